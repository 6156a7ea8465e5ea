"""Rendering of netctl output: aligned tables, JSON and "quiet" name lists.

All list commands share these functions, so every table has the same look (Contiv's tabwriter style:
a header, a dashed underline, columns padded by two spaces) and every ``-j`` prints the same JSON
formatting as ``inspect``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click

Row = dict[str, Any]

PADDING = 2


def format_cell(value: Any) -> str:
    """Turn a JSON value into table text: lists comma-joined, missing values blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(format_cell(v) for v in value if v not in (None, ""))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


@dataclass(frozen=True)
class Column:
    """One table column: its header and how to read the cell from an object.

    ``source`` is a JSON field name, or a function for computed cells (e.g. a bandwidth normalised
    the way Contiv printed it).
    """

    header: str
    source: str | Callable[[Row], Any]

    def cell(self, obj: Row) -> str:
        value = self.source(obj) if callable(self.source) else obj.get(self.source)
        return format_cell(value)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Align ``rows`` under ``headers``; the last column is not padded so lines have no trailing blanks."""
    table = [list(headers), ["-" * len(h) for h in headers], *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i] + PADDING) for i, cell in enumerate(row[:-1])]
        lines.append(("".join(cells) + row[-1]).rstrip())
    return "\n".join(lines)


def echo_table(columns: Sequence[Column], objects: Iterable[Row]) -> None:
    click.echo(render_table([c.header for c in columns], ([c.cell(o) for c in columns] for o in objects)))


def echo_json(data: Any) -> None:
    """Pretty JSON, two-space indent like Contiv's ``json.MarshalIndent(…, "", "  ")``."""
    click.echo(json.dumps(data, indent=2))


def echo_names(objects: Iterable[Row], name_field: str) -> None:
    for obj in objects:
        click.echo(format_cell(obj.get(name_field)))


def echo_listing(
    objects: Sequence[Row],
    columns: Sequence[Column],
    name_field: str,
    *,
    as_json: bool = False,
    quiet: bool = False,
) -> None:
    """The three faces of every ``ls``: JSON (wins over quiet, as in Contiv), names only, or a table."""
    if as_json:
        echo_json(list(objects))
    elif quiet:
        echo_names(objects, name_field)
    else:
        echo_table(columns, objects)


def echo_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """``Label: value`` lines with aligned values (``global info``, ``aci-gw info``)."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    for label, value in pairs:
        click.echo(f"{(label + ':').ljust(width)} {format_cell(value)}".rstrip())
