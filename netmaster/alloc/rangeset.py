"""A set of integers kept as sorted, disjoint, inclusive ranges.

Allocations are mostly contiguous (lowest free first), so ranges stay few and the set serialises
to short strings such as ``"1-3,254"`` — the same shape as Contiv's range strings in inspect.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator


class RangeSet:
    __slots__ = ("_his", "_los")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._los: list[int] = []
        self._his: list[int] = []
        for lo, hi in ranges:
            self.add_range(lo, hi)

    # -- (de)serialisation ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> RangeSet:
        out = cls()
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            out.add_range(int(lo), int(hi or lo))
        return out

    def dump(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges())

    def render(self, fmt: Callable[[int], str], sep: str = ", ") -> str:
        """Contiv's human form, e.g. ``10.1.1.1-10.1.1.3, 10.1.1.254``."""
        return sep.join(fmt(lo) if lo == hi else f"{fmt(lo)}-{fmt(hi)}" for lo, hi in self.ranges())

    # -- queries -------------------------------------------------------------------------------------

    def ranges(self) -> Iterator[tuple[int, int]]:
        return zip(self._los, self._his, strict=True)

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self._los, value) - 1
        return i >= 0 and value <= self._his[i]

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges())

    def __bool__(self) -> bool:
        return bool(self._los)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and list(self.ranges()) == list(other.ranges())

    def __repr__(self) -> str:
        return f"RangeSet({self.dump()!r})"

    def min(self) -> int | None:
        return self._los[0] if self._los else None

    def max(self) -> int | None:
        return self._his[-1] if self._his else None

    def overlaps(self, lo: int, hi: int) -> bool:
        i = bisect.bisect_right(self._los, hi) - 1
        return i >= 0 and self._his[i] >= lo

    def lowest_free(self, lo: int, hi: int) -> int | None:
        """The smallest value in ``[lo, hi]`` not in the set."""
        candidate = lo
        i = max(bisect.bisect_right(self._los, lo) - 1, 0)
        while candidate <= hi:
            if i >= len(self._los) or candidate < self._los[i]:
                return candidate
            if candidate <= self._his[i]:
                candidate = self._his[i] + 1
            i += 1
        return None

    def free_within(self, lo: int, hi: int) -> RangeSet:
        """The complement of the set inside ``[lo, hi]``."""
        out = RangeSet()
        cursor = lo
        for a, b in self.ranges():
            if b < cursor:
                continue
            if a > hi:
                break
            if a > cursor:
                out.add_range(cursor, a - 1)
            cursor = max(cursor, b + 1)
        if cursor <= hi:
            out.add_range(cursor, hi)
        return out

    # -- updates -------------------------------------------------------------------------------------

    def add(self, value: int) -> None:
        self.add_range(value, value)

    def add_range(self, lo: int, hi: int) -> None:
        if lo > hi:
            return
        # Merge with every range that overlaps or touches [lo, hi].
        start = bisect.bisect_left(self._his, lo - 1)
        end = bisect.bisect_right(self._los, hi + 1)
        if start < end:
            lo = min(lo, self._los[start])
            hi = max(hi, self._his[end - 1])
        self._los[start:end] = [lo]
        self._his[start:end] = [hi]

    def remove(self, value: int) -> None:
        self.remove_range(value, value)

    def remove_range(self, lo: int, hi: int) -> None:
        if lo > hi:
            return
        start = bisect.bisect_left(self._his, lo)
        end = bisect.bisect_right(self._los, hi)
        if start >= end:
            return
        keep_los: list[int] = []
        keep_his: list[int] = []
        if self._los[start] < lo:
            keep_los.append(self._los[start])
            keep_his.append(lo - 1)
        if self._his[end - 1] > hi:
            keep_los.append(hi + 1)
            keep_his.append(self._his[end - 1])
        self._los[start:end] = keep_los
        self._his[start:end] = keep_his

    def copy(self) -> RangeSet:
        out = RangeSet()
        out._los = list(self._los)
        out._his = list(self._his)
        return out
