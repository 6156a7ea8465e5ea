"""``netctl network`` (alias ``net``): L2/L3 networks with their subnet, gateway and encapsulation."""

from __future__ import annotations

import ipaddress

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    get_client,
    tenant_option,
    usage_error,
)
from netmaster.cli.output import Column

NETWORK = Resource(
    plural="networks",
    label="network",
    name_field="networkName",
    columns=(
        Column("Tenant", "tenantName"),
        Column("Network", "networkName"),
        Column("Nw Type", "nwType"),
        Column("Encap type", "encap"),
        Column("Packet tag", "pktTag"),
        Column("Subnet", "subnet"),
        Column("Gateway", "gateway"),
        Column("IPv6Subnet", "ipv6Subnet"),
        Column("IPv6Gateway", "ipv6Gateway"),
        Column("Cfgd Tag", "cfgdTag"),
    ),
)


@click.group(cls=NetctlGroup, aliases=["net"], help="Network manipulation tools.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, NETWORK, "List networks.")
add_inspect_command(cli, NETWORK, "NETWORK", "Inspect a network (allocations, endpoints).")
add_delete_command(cli, NETWORK, "NETWORK", "Delete a network.")


def _check_gateway(value: str | None, version: int, message: str) -> None:
    """Contiv refused a malformed gateway before sending anything; so do we (exit 1, with help)."""
    if not value:
        return
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise usage_error(message) from None
    if address.version != version:
        raise usage_error(message)


@cli.command("create")
@click.argument("name", metavar="NETWORK")
@tenant_option
@click.option("-n", "--nw-type", default="data", show_default=True, help="Network type (infra or data).")
@click.option("-e", "--encap", default="vxlan", show_default=True, help="Encap type (vlan or vxlan).")
@click.option("-p", "--pkt-tag", type=int, default=0, help="Packet tag (VLAN id or VNI); 0 allocates one.")
@click.option("-s", "--subnet", help="Subnet CIDR, e.g. 10.1.1.0/24 or 10.1.1.10-10.1.1.100/24 (required).")
@click.option("-g", "--gateway", help="Gateway IPv4 address.")
@click.option("-s6", "--subnetv6", help="IPv6 subnet CIDR.")
@click.option("-g6", "--gatewayv6", help="IPv6 gateway address.")
@click.option("--nw-tag", "--tag", "nw_tag", help="Configured network tag.")
@click.option("--host-access", type=click.Choice(["enabled", "disabled"]), default=None,
              help="Containers reach their host and, source-NATed, the outside (default enabled; not in Contiv).")
def create(
    name: str,
    tenant: str,
    nw_type: str,
    encap: str,
    pkt_tag: int,
    subnet: str | None,
    gateway: str | None,
    subnetv6: str | None,
    gatewayv6: str | None,
    nw_tag: str | None,
    host_access: str | None,
) -> None:
    """Create a network."""
    if not subnet:
        raise usage_error("Subnet is required")
    _check_gateway(gateway, 4, "Invalid gateway - Enter in A.B.C.D format")
    _check_gateway(gatewayv6, 6, "Invalid IPv6 gateway")
    NETWORK.create(
        tenant,
        name,
        {
            "tenantName": tenant,
            "networkName": name,
            "nwType": nw_type,
            "encap": encap,
            "pktTag": pkt_tag,
            "subnet": subnet,
            "gateway": gateway,
            "ipv6Subnet": subnetv6,
            "ipv6Gateway": gatewayv6,
            "cfgdTag": nw_tag,
            "hostAccess": host_access,
        },
    )


@cli.command("update")
@click.argument("name", metavar="NETWORK")
@tenant_option
@click.option("--host-access", type=click.Choice(["enabled", "disabled"]), required=True,
              help="Switch host access and external SNAT on or off for the network's containers.")
def update(name: str, tenant: str, host_access: str) -> None:
    """Switch a network's host access (the one setting a network may change; not in Contiv)."""
    client = get_client()
    key = NETWORK.key(tenant, name)
    current = client.get(NETWORK.plural, key)
    body = {k: v for k, v in current.items() if k not in ("key", "link-sets", "links")}
    client.post(NETWORK.plural, key, {**body, "hostAccess": host_access})
    click.echo(f"Updating {NETWORK.label} {key}")
