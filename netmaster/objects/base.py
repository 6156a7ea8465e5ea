"""What every object handler shares: the stored record, lookups, and the handler hooks.

A handler holds Contiv's callback semantics for one object type (what creating, updating and
deleting it means, what its inspect ``Oper`` shows). The service (:mod:`netmaster.objects.service`)
does the generic part: parsing, the transaction, storing the record, generation counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netmaster.errors import ConflictError, NotFoundError
from netmaster.model.catalog import ObjectType
from netmaster.store import keys
from netmaster.store.txn import Txn


@dataclass
class Record:
    """An object as stored: the user's config and the values netmaster allocated for it."""

    kind: str
    key: str
    config: dict[str, Any]
    status: dict[str, Any]

    def dump(self) -> dict[str, Any]:
        return {"config": self.config, "status": self.status}


async def get_record(txn: Txn, kind: str, key: str) -> Record | None:
    value = await txn.get(keys.obj(kind, key))
    return Record(kind, key, value["config"], value["status"]) if value else None


async def require(txn: Txn, kind: str, key: str, message: str | None = None) -> Record:
    """The object, or 404 with Contiv's wording (``<kind> <key> not found``)."""
    record = await get_record(txn, kind, key)
    if record is None:
        raise NotFoundError(message or f"{kind} {key} not found")
    return record


async def list_records(txn: Txn, kind: str, tenant: str | None = None) -> list[Record]:
    """Objects of ``kind`` (of one tenant if given), guarded against concurrent creates/deletes."""
    items = await txn.list(keys.obj_prefix(kind, tenant), generation=keys.generation(kind))
    prefix_len = len(keys.obj_prefix(kind))
    return [Record(kind, k[prefix_len:], v["config"], v["status"]) for k, v in items]


async def global_settings(txn: Txn) -> dict[str, Any] | None:
    record = await get_record(txn, "global", "global")
    return record.config if record else None


async def infra_type(txn: Txn) -> str:
    settings = await global_settings(txn)
    return (settings or {}).get("networkInfraType") or "default"


def refuse_in_use(what: str, users: list[str], message: str) -> None:
    if users:
        raise ConflictError(f"{message} ({what}: {', '.join(users)})")


class Handler:
    """Contiv's callbacks for one object type. Subclasses override what their type needs."""

    otype: ClassVar[ObjectType]
    # Updates of these types are refused unless the config is unchanged (Contiv's message).
    immutable_message: ClassVar[str | None] = None

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        """Validate references, allocate resources; return the object's status."""
        return {}

    async def update(self, txn: Txn, old: Record, config: dict[str, Any]) -> dict[str, Any]:
        if self.immutable_message and old.config != config:
            raise ConflictError(self.immutable_message)
        return old.status

    async def delete(self, txn: Txn, record: Record) -> None:
        """Refuse while in use, release resources."""

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        return {}
