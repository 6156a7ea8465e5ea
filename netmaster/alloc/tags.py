"""Integer id pools shared by the whole cluster: VLANs, VXLAN VNIs, host-local VLANs, EPG ids.

Each pool is one store record ``{"used": "<ranges>"}``; allocation is lowest-free-first inside the
range the global settings allow, so results are deterministic and tests can name exact ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from netmaster.alloc.rangeset import RangeSet
from netmaster.errors import ConflictError, InvalidError
from netmaster.store import keys
from netmaster.store.txn import Txn


@dataclass(frozen=True)
class Pool:
    name: str  # store record name and the word used in messages
    noun: str
    max_value: int

    @property
    def key(self) -> str:
        return keys.alloc(self.name)


VLAN = Pool("vlan", "vlan", 4094)
VXLAN = Pool("vxlan", "vxlan", 16777215)
LOCAL_VLAN = Pool("localvlan", "local vlan", 4094)
EPG_ID = Pool("epgid", "endpoint group id", 65535)

LOCAL_VLAN_RANGE = (1, 4094)
EPG_ID_RANGE = (1, 65535)


def parse_tag_range(text: str, kind: str) -> tuple[int, int]:
    """Validate a global ``vlans``/``vxlans`` range the way Contiv's ParseTagRanges did."""
    lo_text, sep, hi_text = text.partition("-")
    if not sep or not lo_text.isdigit() or not hi_text.isdigit():
        raise InvalidError(f"invalid {kind} range {text!r}: expected min-max")
    lo, hi = int(lo_text), int(hi_text)
    if lo < 1 or lo > hi:
        raise InvalidError(f"invalid {kind} range {text!r}: need 1 <= min <= max")
    if kind == "vlan" and hi > 4094:
        raise InvalidError(f"invalid vlan range {text!r}: vlan ids end at 4094")
    if kind == "vxlan" and (hi > 65535 or hi - lo + 1 > 16000):
        raise InvalidError(f"invalid vxlan range {text!r}: at most 16000 ids, up to 65535")
    return lo, hi


async def used(txn: Txn, pool: Pool) -> RangeSet:
    record = await txn.get(pool.key)
    return RangeSet.parse(record["used"]) if record else RangeSet()


async def allocate(txn: Txn, pool: Pool, lo: int, hi: int, requested: int = 0) -> int:
    """Take ``requested`` (if non-zero) or the lowest free id in ``[lo, hi]``."""
    taken = await used(txn, pool)
    if requested:
        if not lo <= requested <= hi:
            if pool is VXLAN:
                raise ConflictError("requested vxlan is out of range")
            raise ConflictError(f"requested {pool.noun} not available - {pool.noun}:{requested}")
        if requested in taken:
            raise ConflictError(f"requested {pool.noun} not available - {pool.noun}:{requested}")
        value = requested
    else:
        found = taken.lowest_free(lo, hi)
        if found is None:
            raise ConflictError(f"no {pool.noun}s available")
        value = found
    taken.add(value)
    txn.put(pool.key, {"used": taken.dump()})
    return value


async def release(txn: Txn, pool: Pool, value: int) -> None:
    taken = await used(txn, pool)
    if value in taken:
        taken.remove(value)
        txn.put(pool.key, {"used": taken.dump()})
