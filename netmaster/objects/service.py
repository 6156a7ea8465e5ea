"""The object service: Contiv's create-or-update, get, list, delete and inspect for every type.

Each call is one store transaction (see :mod:`netmaster.store.txn`): the handler's checks, allocations
and the stored record commit together or not at all, so a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from netmaster.errors import NotFoundError
from netmaster.model.catalog import BY_KIND, ObjectType
from netmaster.objects.aci_gw import AciGwHandler
from netmaster.objects.app_profile import AppProfileHandler
from netmaster.objects.base import Handler, Record, get_record
from netmaster.objects.bgp import BgpHandler
from netmaster.objects.endpoint_group import EndpointGroupHandler
from netmaster.objects.ext_contracts import ExtContractsGroupHandler
from netmaster.objects.global_settings import DEFAULTS, GlobalHandler
from netmaster.objects.index import ObjectIndex
from netmaster.objects.netprofile import NetprofileHandler
from netmaster.objects.network import NetworkHandler
from netmaster.objects.policy import PolicyHandler, RuleHandler
from netmaster.objects.service_lb import ServiceLBHandler
from netmaster.objects.tenant import TenantHandler
from netmaster.store import keys
from netmaster.store.base import Store
from netmaster.store.cache import cached
from netmaster.store.txn import Txn, read_only, run_txn


def _normalise(otype: ObjectType, config: dict[str, Any]) -> None:
    if otype.kind == "rule" and config["priority"] == 0:
        config["priority"] = 1  # Contiv coerced 0 to the default priority


class ObjectService:
    def __init__(
        self,
        store: Store,
        *,
        cluster_mode: str = "docker",
        check_contracts: Callable[[Iterable[str]], Awaitable[None]] | None = None,
    ) -> None:
        # Reads come from the watch cache (netmaster.store.cache) and its object index; writes go
        # through the cache to the store, so this process reads its own writes.
        self.store = cached(store)
        self.index = ObjectIndex(self.store)
        handlers: list[Handler] = [
            TenantHandler(),
            NetworkHandler(),
            EndpointGroupHandler(),
            PolicyHandler(),
            RuleHandler(),
            AppProfileHandler(),
            NetprofileHandler(),
            ExtContractsGroupHandler(check_contracts),
            ServiceLBHandler(),
            BgpHandler(),
            GlobalHandler(cluster_mode),
            AciGwHandler(),
        ]
        self.handlers: dict[str, Handler] = {h.otype.kind: h for h in handlers}

    async def apply(
        self, kind: str, key: str, body: Any, *, status: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], int]:
        """Create or update (Contiv's POST and PUT are the same); the stored object and revision.

        ``status`` is merged into what the handler computed (a ``None`` value removes the field): how
        netmaster itself annotates objects, e.g. a tenant imported from the APIC (``source``).
        """
        otype = BY_KIND[kind]
        config = otype.parse(key, body)
        _normalise(otype, config)
        handler = self.handlers[kind]
        extra = status

        async def op(txn: Txn) -> Record:
            existing = await get_record(txn, kind, key)
            conf = dict(config)
            if existing is None:
                computed = await handler.create(txn, conf)
                await txn.bump(keys.generation(kind))
            else:
                computed = await handler.update(txn, existing, conf)
            if extra:
                computed = {k: v for k, v in {**computed, **extra}.items() if v is not None}
            record = Record(kind, key, conf, computed)
            txn.put(keys.obj(kind, key), record.dump())
            return record

        record, revision = await run_txn(self.store, op)
        return {"key": key, **record.config}, revision

    async def delete(self, kind: str, key: str) -> int:
        handler = self.handlers[kind]

        async def op(txn: Txn) -> None:
            record = await get_record(txn, kind, key)
            if record is None:
                raise NotFoundError(f"{kind} {key} not found")
            await handler.delete(txn, record)
            txn.delete(keys.obj(kind, key))
            await txn.bump(keys.generation(kind))

        _, revision = await run_txn(self.store, op)
        return revision

    async def get(self, kind: str, key: str) -> dict[str, Any]:
        await self.store.fresh()
        record = self.index.record(kind, key)
        if record is None:
            raise NotFoundError(f"{kind} {key} not found")
        return self.index.decorate(record)

    async def get_encoded(self, kind: str, key: str) -> bytes:
        """:meth:`get` as the JSON the API sends, encoded once per change."""
        await self.store.fresh()
        body = self.index.encoded(kind, key)
        if body is None:
            raise NotFoundError(f"{kind} {key} not found")
        return body

    async def list_encoded(self, kind: str) -> tuple[bytes, int]:
        """:meth:`list` as the JSON the API sends, and the revision."""
        revision = await self.store.fresh()
        return self.index.encoded_list(kind), revision

    async def list(self, kind: str) -> tuple[list[dict[str, Any]], int]:
        revision = await self.store.fresh()
        return [self.index.decorate(r) for r in self.index.records(kind)], revision

    async def inspect(self, kind: str, key: str) -> dict[str, Any]:
        handler = self.handlers[kind]
        await self.store.fresh()
        record = self.index.record(kind, key)
        if record is None:
            raise NotFoundError(f"{kind} {key} not found")
        config = self.index.decorate(record)
        return {"Config": config, "Oper": await read_only(self.store, lambda txn: handler.oper(txn, record))}

    async def ensure_defaults(self, *, infra: str | None = None, fwd_mode: str | None = None) -> None:
        """First start: tenant ``default`` and the global settings; later starts: apply changed flags.

        A flag that cannot be applied (say, a different forwarding mode while networks exist) is an
        error the daemon reports at startup rather than silently ignoring.
        """
        current = await read_only(self.store, lambda txn: get_record(txn, "global", "global"))
        wanted = dict(current.config if current else DEFAULTS)
        if infra:
            wanted["networkInfraType"] = infra
        if fwd_mode:
            wanted["fwdMode"] = fwd_mode
        if current is None or wanted != current.config:
            await self.apply("global", "global", wanted)
        if await read_only(self.store, lambda txn: get_record(txn, "tenant", "default")) is None:
            await self.apply("tenant", "default", {"tenantName": "default"})
