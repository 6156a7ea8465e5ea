"""Export the whole netmaster state to a JSON document and import it into another store.

This is how a deployment is backed up, restored, or moved from the embedded SQLite store to etcd:
``netmaster export --cluster-store sqlite:///... > state.json`` then
``netmaster import --cluster-store etcd://... < state.json``.

* **Export** lists every key under ``/contiv/`` in one read, so the document is a consistent snapshot
  at one store revision (recorded as ``revision``). Ephemeral keys are left out: the leader key,
  member records, agent records and anything else attached to a lease belong to running processes
  and are recreated by them.
* **Import** validates the whole document before writing anything (JSON, format name, version, key
  names, duplicate keys), then writes in transactions of at most :data:`BATCH` keys, because etcd
  refuses a transaction with more than ``--max-txn-ops`` (default 128) operations. Each key is
  written create-only, so an import never overwrites a key someone else wrote meanwhile.
* A store that already holds state is refused: merging two states would mix two sets of allocations
  (two networks with one VLAN, two endpoints with one address). ``replace=True`` (``--force``) first
  deletes the target's state, then imports: for restoring over a deployment, or completing an import
  that was interrupted half-way.

Revisions are not carried over (a store numbers its own revisions); watchers that resume with a
revision of the old store get 410 and re-list (see :mod:`netmaster.api.watch`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from netmaster.ha.leader import LEADER_KEY
from netmaster.ha.membership import MEMBERS_PREFIX
from netmaster.store import keys
from netmaster.store.base import Compare, Delete, KeyValue, Op, Put, Store

FORMAT = "contiv-netmaster-state"
VERSION = 1
BATCH = 128  # etcd's default --max-txn-ops; compares and puts each stay within it

_EPHEMERAL_PREFIXES = (LEADER_KEY, MEMBERS_PREFIX, keys.AGENTS)


class BackupError(Exception):
    """The document cannot be imported, or the target store refuses it; nothing was written."""


class ImportInterruptedError(BackupError):
    """The store failed after some batches were written: the target is incomplete."""


def is_ephemeral(kv: KeyValue) -> bool:
    """Keys that belong to running processes (leases, leader, members, agents): never exported."""
    return bool(kv.lease) or kv.key.startswith(_EPHEMERAL_PREFIXES)


async def export_state(store: Store, *, source: str = "") -> dict[str, Any]:
    """Every durable key under ``/contiv/`` at one revision, as the export document."""
    kvs, revision = await store.list(keys.ROOT)
    entries = [{"key": kv.key, "value": _decode(kv.value)} for kv in kvs if not is_ephemeral(kv)]
    return {
        "format": FORMAT,
        "version": VERSION,
        "revision": revision,
        "exportedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": source,
        "keys": entries,
    }


def _decode(value: str) -> Any:
    # Every netmaster value is JSON; keep it as JSON in the document so that it reads and diffs well.
    return json.loads(value)


def parse_document(text: str) -> list[tuple[str, str]]:
    """Validate an export document; the (key, value) pairs to write, or :class:`BackupError`."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BackupError(f"not a JSON document: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError(f"not a netmaster export: expected an object with \"format\": \"{FORMAT}\"")
    if doc.get("version") != VERSION:
        raise BackupError(f"unsupported export version {doc.get('version')!r}: this netmaster reads version {VERSION}")
    entries = doc.get("keys")
    if not isinstance(entries, list):
        raise BackupError("\"keys\" must be a list of {\"key\": ..., \"value\": ...}")
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"key", "value"} or not isinstance(entry["key"], str):
            raise BackupError(f"keys[{i}]: expected {{\"key\": string, \"value\": JSON}}")
        key = entry["key"]
        if not key.startswith(keys.ROOT) or key == keys.ROOT:
            raise BackupError(f"keys[{i}]: {key!r} is not a netmaster key (they start with {keys.ROOT})")
        if key.startswith(_EPHEMERAL_PREFIXES):
            raise BackupError(f"keys[{i}]: {key!r} belongs to a running process and cannot be imported")
        if key in seen:
            raise BackupError(f"keys[{i}]: {key!r} appears twice")
        seen.add(key)
        out.append((key, json.dumps(entry["value"], separators=(",", ":"))))
    return out


@dataclass(frozen=True)
class ImportResult:
    written: int
    deleted: int  # keys of the previous state removed (replace only)
    revision: int


async def import_state(store: Store, entries: list[tuple[str, str]], *, replace: bool = False) -> ImportResult:
    """Write ``entries`` (from :func:`parse_document`) into ``store``; see the module docstring."""
    kvs, _ = await store.list(keys.ROOT)
    existing = [kv for kv in kvs if not is_ephemeral(kv)]
    if existing and not replace:
        shown = ", ".join(kv.key for kv in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise BackupError(
            f"the target store already holds netmaster state ({len(existing)} keys: {shown}); import needs an "
            "empty store. Use --force to delete that state and replace it (stop every netmaster first)"
        )
    written = 0
    revision = 0
    try:
        # Deleting first leaves the target empty, not mixed, if the import is interrupted.
        for batch in _batches([kv.key for kv in existing]):
            revision = (await store.txn([], [Delete(k) for k in batch])).revision
        for batch in _batches(entries):
            ops: list[Op] = [Put(k, v) for k, v in batch]
            result = await store.txn([Compare(k, 0) for k, _ in batch], ops)
            if not result.succeeded:
                raise BackupError(
                    f"{', '.join(result.failed_keys[:3])} appeared in the target store during the import "
                    "(is a netmaster running on it?); stop every netmaster and import again with --force"
                )
            revision = result.revision
            written += len(batch)
    except BackupError:
        raise
    except Exception as exc:
        raise ImportInterruptedError(
            f"import interrupted after writing {written} of {len(entries)} keys: {exc}; "
            "the target store is incomplete: import again with --force"
        ) from exc
    return ImportResult(written=written, deleted=len(existing), revision=revision)


def _batches(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
