"""Store, read and delete Kubernetes objects (NetworkPolicy, Namespace, Pod labels), one transaction
each. Each is kept under ``/contiv/obj/<kind>/<tenant>:<namespace>[:<name>]`` like Contiv's objects,
so the agents receive them on the same snapshot + watch stream."""

from __future__ import annotations

from typing import Any

from contiv_api.k8s_netpol import KIND_NAMESPACE, KIND_POD, KIND_POLICY, PolicyError, parse_manifest
from netmaster.errors import InvalidError, NotFoundError
from netmaster.store import keys
from netmaster.store.base import Store
from netmaster.store.txn import Txn, read_only, run_txn

#: The API's collection names.
PLURALS = {"networkpolicies": KIND_POLICY, "namespaces": KIND_NAMESPACE, "pods": KIND_POD}


class KubernetesService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def apply(self, manifest: Any, tenant: str) -> tuple[dict[str, Any], int]:
        """Create or replace one object; refused (400, nothing stored) when it does not parse or its
        tenant does not exist."""
        try:
            kind, key, record = parse_manifest(manifest, tenant)
        except PolicyError as exc:
            raise InvalidError(str(exc)) from None

        async def op(txn: Txn) -> None:
            if await txn.get(keys.obj("tenant", tenant)) is None:
                raise NotFoundError(f"tenant {tenant} not found")
            if await txn.get(keys.obj(kind, key)) is None:
                await txn.bump(keys.generation(kind))
            txn.put(keys.obj(kind, key), {"config": record, "status": {}})

        _, revision = await run_txn(self.store, op)
        return {"kind": kind, "key": key, **record}, revision

    async def delete(self, plural: str, key: str) -> int:
        kind = _kind(plural)

        async def op(txn: Txn) -> None:
            if await txn.get(keys.obj(kind, key)) is None:
                raise NotFoundError(f"{plural} {key} not found")
            txn.delete(keys.obj(kind, key))
            await txn.bump(keys.generation(kind))

        _, revision = await run_txn(self.store, op)
        return revision

    async def get(self, plural: str, key: str) -> dict[str, Any]:
        kind = _kind(plural)
        value = await read_only(self.store, lambda txn: txn.get(keys.obj(kind, key)))
        if value is None:
            raise NotFoundError(f"{plural} {key} not found")
        return {"key": key, **value["config"]}

    async def list(self, plural: str) -> list[dict[str, Any]]:
        kind = _kind(plural)
        prefix = keys.obj_prefix(kind)
        items = await read_only(self.store, lambda txn: txn.list(prefix))
        return [{"key": key[len(prefix):], **value["config"]} for key, value in items]


def _kind(plural: str) -> str:
    try:
        return PLURALS[plural]
    except KeyError:
        raise NotFoundError(f"unknown collection {plural}: {', '.join(PLURALS)}") from None
