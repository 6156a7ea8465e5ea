"""``netctl endpoint`` (alias ``ep``): operational state of container endpoints (read only)."""

from __future__ import annotations

import click

from netmaster.cli.framework import NetctlGroup, Resource, add_inspect_command, add_list_command
from netmaster.cli.output import Column, Row


def _container(endpoint: Row) -> str:
    """Prefer the container name; fall back to a short container id like ``docker ps`` does."""
    return str(endpoint.get("containerName") or str(endpoint.get("containerID") or "")[:12])


def _ipv4(endpoint: Row) -> str:
    """Contiv keeps ``ipAddress`` as ``[v4, v6]``; the table shows the addresses that are set."""
    value = endpoint.get("ipAddress")
    if isinstance(value, list):
        return ",".join(str(v) for v in value if v)
    return str(value or "")


ENDPOINT = Resource(
    plural="endpoints",
    label="endpoint",
    name_field="endpointID",
    columns=(
        Column("Endpoint ID", "endpointID"),
        Column("Container", _container),
        Column("Network", "network"),
        Column("Group", "endpointGroupKey"),
        Column("IP Address", _ipv4),
        Column("MAC Address", "macAddress"),
        Column("Host", "homingHost"),
    ),
    tenant_scoped=False,
)


@click.group(cls=NetctlGroup, aliases=["ep"], help="Endpoint inspection.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_inspect_command(
    cli, ENDPOINT, "ENDPOINT", "Inspect an endpoint, matched by endpoint id, container id or container name."
)
add_list_command(cli, ENDPOINT, "List endpoints (an addition to Contiv's netctl).")
