"""Who is alive in the cluster: lease-backed records under ``/contiv/members/<role>/<id>``.

Each netmaster keeps its own record, and a record for every agent it currently serves, alive under
one lease. When a netmaster dies its lease expires and its records vanish with it; agents that
reconnect to another netmaster are registered again there. ``/info`` lists these records, so what it
shows is what is really alive, not what was configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field

from contiv_api.backoff import Backoff
from netmaster.ha.lease import LeaseLost, keep_alive, revoke_quietly
from netmaster.store.base import LeaseNotFoundError, Store, StoreError

log = logging.getLogger(__name__)

MEMBERS_PREFIX = "/contiv/members/"


@dataclass(frozen=True)
class MemberInfo:
    """The identity a netmaster (or agent) publishes: as leader-key value and as member record."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    role: str = "netmaster"
    url: str = ""  # where its control API answers
    host: str = field(default_factory=socket.gethostname)
    started_at: float = field(default_factory=time.time)
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MemberInfo:
        data = json.loads(text)
        known = {k: data[k] for k in ("id", "role", "url", "host", "started_at", "extra") if k in data}
        return cls(**known)

    def key(self, prefix: str = MEMBERS_PREFIX) -> str:
        return f"{prefix}{self.role}/{self.id}"


async def list_members(store: Store, role: str | None = None, prefix: str = MEMBERS_PREFIX) -> list[MemberInfo]:
    """Live members, optionally of one role, in key order."""
    kvs, _ = await store.list(f"{prefix}{role}/" if role else prefix)
    out = []
    for kv in kvs:
        try:
            out.append(MemberInfo.from_json(kv.value))
        except (ValueError, TypeError):
            log.warning("ignoring malformed member record %s", kv.key)
    return out


class MemberRegistry:
    """Keeps a set of member records alive under one lease, re-creating them if the lease is lost."""

    def __init__(self, store: Store, *, ttl: float = 10.0, prefix: str = MEMBERS_PREFIX) -> None:
        self.store = store
        self.ttl = ttl
        self.prefix = prefix
        self._records: dict[str, MemberInfo] = {}
        self._lease = 0
        self._task: asyncio.Task[None] | None = None
        self._registered = asyncio.Event()

    async def register(self, info: MemberInfo) -> None:
        """Publish ``info`` now if the registry holds a lease, and keep it published."""
        key = info.key(self.prefix)
        self._records[key] = info
        if self._lease:
            try:
                await self.store.put(key, info.to_json(), lease=self._lease)
            except LeaseNotFoundError:
                pass  # the run loop notices the lost lease and publishes every record again

    async def unregister(self, role: str, member_id: str) -> None:
        key = f"{self.prefix}{role}/{member_id}"
        if self._records.pop(key, None) is not None:
            await self.store.delete(key)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="member-registry")

    async def wait_registered(self) -> None:
        """Until the records were published once (e.g. before answering readiness probes)."""
        await self._registered.wait()

    async def stop(self) -> None:
        """Withdraw every record at once (revoking the lease), rather than letting it expire."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._lease:
            lease, self._lease = self._lease, 0
            await revoke_quietly(self.store, lease, self.ttl / 3)

    async def _run(self) -> None:
        backoff = Backoff(0.1, self.ttl / 3)
        while True:
            try:
                self._lease = await self.store.lease_grant(self.ttl)
                for key, info in list(self._records.items()):
                    await self.store.put(key, info.to_json(), lease=self._lease)
                self._registered.set()
                backoff.reset()
                await keep_alive(self.store, self._lease, self.ttl)
            except (LeaseLost, StoreError) as exc:
                log.warning("member registry: %s; registering again", exc)
                self._lease = 0
                await asyncio.sleep(backoff.next())
