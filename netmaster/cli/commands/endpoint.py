"""``netctl endpoint`` (alias ``ep``): operational state of container endpoints (read only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from netmaster.cli.framework import NetctlGroup, Resource, add_inspect_command, add_list_command
from netmaster.cli.output import Column, Row


def _first(*fields: str) -> Callable[[Row], Any]:
    """Read the first field present: list records use the agent-facing names (``networkName``,
    ``groupName``, ``host``), Contiv's endpoint oper state the old ones (``network``, ``serviceName``,
    ``homingHost``); one table serves both."""

    def read(endpoint: Row) -> Any:
        return next((endpoint[f] for f in fields if endpoint.get(f) not in (None, "")), "")

    return read


def _container(endpoint: Row) -> str:
    """Prefer the container name; fall back to a short container id like ``docker ps`` does."""
    return str(endpoint.get("containerName") or str(endpoint.get("containerID") or "")[:12])


ENDPOINT = Resource(
    plural="endpoints",
    label="endpoint",
    name_field="endpointID",
    columns=(
        Column("Endpoint ID", "endpointID"),
        Column("Container", _container),
        Column("Tenant", "tenantName"),
        Column("Network", _first("networkName", "network")),
        Column("Group", _first("groupName", "serviceName")),
        Column("IP Address", "ipAddress"),
        Column("MAC Address", "macAddress"),
        Column("Host", _first("host", "homingHost")),
    ),
    tenant_scoped=False,
    listed_by_tenant=True,
)


@click.group(cls=NetctlGroup, aliases=["ep"], help="Endpoint inspection.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_inspect_command(
    cli, ENDPOINT, "ENDPOINT", "Inspect an endpoint, matched by endpoint id, container id or container name."
)
add_list_command(cli, ENDPOINT, "List endpoints (an addition to Contiv's netctl).")
