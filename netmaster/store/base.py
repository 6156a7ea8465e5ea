"""The store interface every netmaster backend implements.

It is deliberately small and shaped like etcd v3, so that the embedded backends (memory, SQLite) and
the cluster backend (etcd) behave the same and one test suite covers all of them:

* every write bumps one global ``revision``; each key remembers the revision that created it
  (``create_revision``) and last modified it (``mod_revision``);
* writes happen only in transactions that first compare revisions, so optimistic concurrency (read,
  compute, commit-if-unchanged, retry) is the only way to change state, and two netmasters can never
  hand out the same resource;
* ``watch`` replays every change after a revision, then follows live; a revision older than the
  backend keeps answers :class:`CompactedError` and the client lists again;
* leases expire keys, for leader election and liveness records.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum


class StoreError(Exception):
    """Base of every store failure."""


class StoreUnavailableError(StoreError):
    """The backend cannot be reached (etcd down, database locked for too long)."""


class CompactedError(StoreError):
    """A watch asked for a revision the backend no longer keeps."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest kept: {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class LeaseNotFoundError(StoreError):
    """The lease expired or was revoked."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Compare:
    """Succeeds when ``key``'s mod_revision equals ``mod_revision`` (0: the key must not exist).

    With ``prefix``: when no key under the prefix ``key`` was modified after revision ``mod_revision``
    (a deleted key is not seen: pair it with a key every delete changes). One compare for a whole
    listing, where one per key would exceed etcd's limit of 128 per transaction.
    """

    key: str
    mod_revision: int
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: str
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    key: str


Op = Put | Delete


class EventType(StrEnum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    key: str
    revision: int
    value: str | None = None  # the new value for PUT, None for DELETE
    prev_value: str | None = None


@dataclass(slots=True)
class TxnResult:
    succeeded: bool
    revision: int
    # For a failed transaction: the keys whose compare did not hold (useful for retries and errors).
    failed_keys: list[str] = field(default_factory=list)


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end)."""
    if not prefix:
        return "\x00"
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Store(abc.ABC):
    """An ordered key-value store with revisions, transactions, watches and leases."""

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under ``prefix`` in key order, and the store revision the list was read at."""

    @abc.abstractmethod
    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        """Apply ``ops`` atomically if every compare holds; the revision increases by one if it wrote."""

    @abc.abstractmethod
    def watch(self, prefix: str, since: int) -> AsyncIterator[Event]:
        """Every event under ``prefix`` with revision > ``since``, then live events, until closed.

        Raises :class:`CompactedError` (on first iteration) if ``since`` is older than what is kept.
        """

    @abc.abstractmethod
    async def revision(self) -> int: ...

    @abc.abstractmethod
    async def lease_grant(self, ttl: float) -> int: ...

    @abc.abstractmethod
    async def lease_keepalive(self, lease: int) -> None:
        """Renew ``lease`` for its TTL; :class:`LeaseNotFoundError` if it already expired."""

    @abc.abstractmethod
    async def lease_revoke(self, lease: int) -> None:
        """Drop ``lease`` and delete its keys (no error if it is gone)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    # Hooks for stores whose reads may lag their writes (netmaster.store.cache); no-ops here.

    async def catch_up(self, revision: int) -> None:  # noqa: B027 - optional hook
        """Return once reads reflect ``revision`` (a failed commit's, before retrying)."""

    async def refresh(self) -> bool:
        """Bring reads up to date with every committed write; whether they were behind."""
        return False

    # Conveniences built on the primitives, identical for every backend.

    async def put(self, key: str, value: str, lease: int = 0) -> int:
        return (await self.txn([], [Put(key, value, lease)])).revision

    async def delete(self, key: str) -> int:
        return (await self.txn([], [Delete(key)])).revision

    async def create(self, key: str, value: str, lease: int = 0) -> bool:
        """Put ``key`` only if it does not exist."""
        return (await self.txn([Compare(key, 0)], [Put(key, value, lease)])).succeeded
