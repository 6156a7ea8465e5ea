"""``netctl service``: load-balanced services (a VIP on a network, providers chosen by labels)."""

from __future__ import annotations

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    tenant_option,
)
from netmaster.cli.output import Column

SERVICE = Resource(
    plural="serviceLBs",
    label="ServiceLB",
    name_field="serviceName",
    columns=(
        Column("ServiceName", "serviceName"),
        Column("Tenant", "tenantName"),
        Column("Network", "networkName"),
        Column("Selectors", "selectors"),
        Column("Ports", "ports"),
        Column("Preferred IP", "ipAddress"),
    ),
)


@click.group(cls=NetctlGroup, help="Service load balancer objects.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, SERVICE, "List services.")
add_inspect_command(cli, SERVICE, "SERVICE", "Inspect a service (VIP and providers).")
add_delete_command(cli, SERVICE, "SERVICE", "Delete a service.")


@cli.command("create")
@click.argument("name", metavar="SERVICE")
@tenant_option
@click.option("-s", "--network", help="Network the service VIP is allocated from.")
@click.option("-l", "--selector", "selectors", multiple=True, help="Provider label selector key=value (repeatable).")
@click.option("-p", "--port", "ports", multiple=True, help="svcPort:provPort:protocol (repeatable).")
@click.option("-ip", "--preferred-ip", help="Preferred VIP address.")
@click.option("--affinity", type=click.IntRange(0, 65535), default=0,
              help="Client-IP affinity: seconds a client keeps its provider (0: none; not in Contiv).")
def create(
    name: str,
    tenant: str,
    network: str | None,
    selectors: tuple[str, ...],
    ports: tuple[str, ...],
    preferred_ip: str | None,
    affinity: int,
) -> None:
    """Create a service (re-running it on an existing service updates it, keeping its VIP)."""
    SERVICE.create(
        tenant,
        name,
        {
            "serviceName": name,
            "tenantName": tenant,
            "networkName": network,
            "selectors": list(selectors),
            "ports": list(ports),
            "ipAddress": preferred_ip,
            **({"affinityTimeout": affinity} if affinity else {}),
        },
    )
