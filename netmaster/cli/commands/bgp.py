"""``netctl bgp``: per-host BGP peering for routing mode (the key is the host name)."""

from __future__ import annotations

import ipaddress

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    usage_error,
)
from netmaster.cli.output import Column

BGP = Resource(
    plural="Bgps",
    label="Bgp",
    name_field="hostname",
    columns=(
        Column("HostName", "hostname"),
        Column("RouterIP", "routerip"),
        Column("AS", "as"),
        Column("Neighbor", "neighbor"),
        Column("NeighborAS", "neighbor-as"),
    ),
    tenant_scoped=False,
)


@click.group(cls=NetctlGroup, help="Router (BGP) configuration.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, BGP, "List BGP configuration.")
add_inspect_command(cli, BGP, "HOSTNAME", "Inspect BGP state of a host (neighbor status, routes).")
add_delete_command(cli, BGP, "HOSTNAME", "Delete the BGP configuration of a host.")


@cli.command("create")
@click.argument("hostname", metavar="HOSTNAME")
@click.option("--router-ip", help="This host's router address in x.x.x.x/len form (required).")
@click.option("--as", "as_id", help="Local AS number (required).")
@click.option("--neighbor-as", help="Neighbor AS number (required).")
@click.option("--neighbor", help="Neighbor IPv4 address (required); several, comma-separated, for more ToRs.")
@click.option("--announce-subnets", is_flag=True,
              help="Also announce each network's subnet while this host holds an endpoint of it.")
def create(
    hostname: str, router_ip: str | None, as_id: str | None, neighbor_as: str | None, neighbor: str | None,
    announce_subnets: bool,
) -> None:
    """Add or replace the BGP configuration of HOSTNAME."""
    if not (router_ip and as_id and neighbor_as and neighbor):
        raise usage_error("Missing attributes: --router-ip, --as, --neighbor-as and --neighbor are required")
    try:
        ipaddress.ip_interface(router_ip)
        if "/" not in router_ip:
            raise ValueError(router_ip)
    except ValueError:
        raise usage_error("Wrong CIDR format. Enter in x.x.x.x/len format") from None
    try:
        for address in neighbor.split(","):
            ipaddress.ip_address(address)
    except ValueError:
        raise usage_error("Wrong IP format. Enter in x.x.x.x format") from None
    BGP.create(
        None,
        hostname,
        {
            "hostname": hostname,
            "routerip": router_ip,
            "as": as_id,
            "neighbor-as": neighbor_as,
            "neighbor": neighbor,
            **({"announce-subnets": "yes"} if announce_subnets else {}),  # Contiv's netctl sends no such field
        },
    )
