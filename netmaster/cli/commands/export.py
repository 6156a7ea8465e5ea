"""``netctl export``: the whole netmaster state as one JSON document, read through the API.

The same document as ``netmaster export`` (see :mod:`netmaster.backup.state`), for operators who reach
netmaster but not its store. There is no ``netctl import``: an import needs an empty store with no
netmaster running on it, so it is done with ``netmaster import`` against the store itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from netmaster.cli.errors import NetctlError
from netmaster.cli.framework import NetctlCommand, get_client


@click.command("export", cls=NetctlCommand)
@click.option("--file", "-f", "path", metavar="FILE", help="Write to FILE instead of stdout.")
def cli(path: str | None) -> None:
    """Write every object, endpoint and allocation as one JSON document (netmaster import reads it)."""
    doc = get_client().request("GET", "/api/v1/export")
    text = json.dumps(doc, indent=1)
    if path is None:
        click.echo(text)
    else:
        try:
            Path(path).write_text(text + "\n")
        except OSError as exc:
            raise NetctlError(f"cannot write {path}: {exc}") from exc
    click.echo(f"exported {len(doc['keys'])} keys at revision {doc['revision']}", err=True)
