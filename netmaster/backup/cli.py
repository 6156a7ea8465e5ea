"""``netmaster export`` and ``netmaster import``: the backup commands of the netmaster program.

They work on the store directly (``--cluster-store``, same flag and environment variable as the
server), so a deployment can be exported while netmaster runs, and imported into a new store before
any netmaster serves from it. The document goes to stdout / comes from stdin unless ``--file`` names
one. Problems end with one ``netmaster: error:`` line and a non-zero status; see :mod:`netmaster.backup.state`
for what is exported and the rules of import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netmaster.backup.state import BackupError, export_state, import_state, parse_document
from netmaster.store import DEFAULT_STORE_URL, open_store
from netmaster.store.base import Store, StoreError
from netmaster.store.etcd_options import redact_url

COMMANDS = ("export", "import")
EXIT_INVALID_ARGS = 22


def build_parser(command: str, env_store: str | None) -> argparse.ArgumentParser:
    if command == "export":
        p = argparse.ArgumentParser(
            prog="netmaster export",
            description="Write every object, endpoint and allocation of the store as one JSON document, "
            "a consistent snapshot at one store revision (leader, member and agent records are left out).",
        )
        p.add_argument("--file", "-f", help="write to FILE instead of stdout")
    else:
        p = argparse.ArgumentParser(
            prog="netmaster import",
            description="Load a document written by 'netmaster export' into an empty store (e.g. a new etcd "
            "cluster). The document is checked before anything is written. Stop every netmaster of the "
            "target store first.",
        )
        p.add_argument("--file", "-f", help="read from FILE instead of stdin")
        p.add_argument(
            "--force",
            action="store_true",
            help="the store holds state already: delete it and replace it with the document "
            "(also completes an interrupted import)",
        )
    p.add_argument(
        "--cluster-store",
        default=env_store or DEFAULT_STORE_URL,
        help="store URL, as for the server (env CONTIV_NETMASTER_CLUSTER_STORE; default %(default)s)",
    )
    return p


def main(command: str, argv: Sequence[str], env_store: str | None) -> int:
    args = build_parser(command, env_store).parse_args(argv)
    if command == "import":
        try:
            text = Path(args.file).read_text() if args.file else sys.stdin.read()
            entries = parse_document(text)
        except (OSError, UnicodeDecodeError) as exc:
            return _fail(f"cannot read {args.file or 'stdin'}: {exc}", EXIT_INVALID_ARGS)
        except BackupError as exc:
            return _fail(f"{args.file or 'stdin'}: {exc}; nothing was written", EXIT_INVALID_ARGS)
    try:
        store = open_store(args.cluster_store, readonly=command == "export")
    except StoreError as exc:
        return _fail(str(exc), EXIT_INVALID_ARGS)
    where = redact_url(args.cluster_store)
    if command == "export":
        try:
            doc = asyncio.run(_export(store, where))
        except StoreError as exc:
            return _fail(f"cannot read {where}: {exc}")
        return _write(doc, where, args.file)
    return asyncio.run(_import(store, where, entries, args.force))


async def _export(store: Store, where: str) -> dict[str, Any]:
    try:
        return await export_state(store, source=where)
    finally:
        await store.close()


def _write(doc: dict[str, Any], where: str, path: str | None) -> int:
    text = json.dumps(doc, indent=1) + "\n"
    try:
        if path:
            Path(path).write_text(text)
        else:
            sys.stdout.write(text)
    except OSError as exc:
        return _fail(f"cannot write {path or 'stdout'}: {exc}")
    print(f"netmaster: exported {len(doc['keys'])} keys at revision {doc['revision']} of {where}", file=sys.stderr)
    return 0


async def _import(store: Store, where: str, entries: list[tuple[str, str]], replace: bool) -> int:
    try:
        result = await import_state(store, entries, replace=replace)
    except (BackupError, StoreError) as exc:
        return _fail(f"{where}: {exc}")
    finally:
        await store.close()
    replaced = f" (replacing {result.deleted} keys)" if result.deleted else ""
    print(f"netmaster: imported {result.written} keys into {where}{replaced}", file=sys.stderr)
    return 0


def _fail(message: str, code: int = 1) -> int:
    print(f"netmaster: error: {message}", file=sys.stderr)
    return code
