"""Commands for netmaster's singleton objects (``global``, ``aciGw``): ``info``, ``inspect``, ``set``.

Both follow the same pattern in Contiv: ``info`` prints a few ``Label: value`` lines, ``inspect``
prints Config+Oper JSON, and ``set`` reads the whole object, changes the given fields and posts the
whole object back (the API has no partial update).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from netmaster.cli.errors import RestError
from netmaster.cli.framework import get_client, json_option
from netmaster.cli.output import echo_fields, echo_json


@dataclass(frozen=True)
class Singleton:
    plural: str
    key: str
    label: str
    fields: tuple[tuple[str, str], ...]
    """(label printed by ``info``, JSON field) pairs."""
    defaults: Mapping[str, Any] | None = None
    """Starting object when none exists yet; ``None`` means the object must exist (``global``)."""

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """GET, overlay the fields the user gave (``None`` = not given), POST the whole object."""
        client = get_client()
        try:
            current = client.get(self.plural, self.key)
        except RestError as exc:
            if exc.status != 404 or self.defaults is None:
                raise
            current = dict(self.defaults)
        updated = {**current, **{k: v for k, v in changes.items() if v is not None}}
        result = client.post(self.plural, self.key, updated)
        return result if isinstance(result, dict) else updated


def add_singleton_commands(group: click.Group, singleton: Singleton) -> None:
    """Attach ``info`` and ``inspect`` to ``group`` (``set`` has per-object flags, so modules write it)."""

    @group.command("info", help=f"Show {singleton.label} settings.")
    @json_option
    def info(as_json: bool) -> None:
        objects = get_client().list(singleton.plural)
        if as_json:
            echo_json(objects)
            return
        for obj in objects:
            echo_fields([(label, obj.get(field)) for label, field in singleton.fields])

    @group.command("inspect", help=f"Inspect {singleton.label} configuration and operational state.")
    def inspect() -> None:
        echo_json(get_client().inspect(singleton.plural, singleton.key))
