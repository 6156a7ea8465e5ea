"""``netctl global``: cluster-wide settings (fabric mode, forwarding mode, VLAN/VXLAN ranges)."""

from __future__ import annotations

import click

from netmaster.cli.framework import NetctlGroup, usage_error
from netmaster.cli.singleton import Singleton, add_singleton_commands

GLOBAL = Singleton(
    plural="globals",
    key="global",
    label="global",
    fields=(
        ("Fabric mode", "networkInfraType"),
        ("Forward mode", "fwdMode"),
        ("ARP mode", "arpMode"),
        ("Vlan Range", "vlans"),
        ("Vxlan range", "vxlans"),
        ("Private subnet", "pvtSubnet"),
    ),
)


@click.group(cls=NetctlGroup, help="Global settings.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_singleton_commands(cli, GLOBAL)


@cli.command("set")
@click.option("-f", "--fabric-mode", help="Fabric mode (aci, aci-opflex or default).")
@click.option("-v", "--vlan-range", help="Allowed VLAN id range, e.g. 1-4094.")
@click.option("-x", "--vxlan-range", help="Allowed VXLAN VNI range, e.g. 1-10000.")
@click.option("-b", "--fwd-mode", help="Forwarding mode (bridge or routing).")
@click.option("-a", "--arp-mode", help="ARP mode (proxy or flood).")
@click.option("-s", "--private-subnet", help="A /16 private subnet for host access, e.g. 172.19.0.0/16.")
def set_global(
    fabric_mode: str | None,
    vlan_range: str | None,
    vxlan_range: str | None,
    fwd_mode: str | None,
    arp_mode: str | None,
    private_subnet: str | None,
) -> None:
    """Change global settings; settings not given keep their current value.

    \f
    Contiv's ``--private-subnet`` defaulted to 172.19.0.0/16 and so was always re-sent, which reset a
    custom subnet (or failed once networks existed) on every ``global set``. Here it is only sent when
    given.
    """
    changes = {
        "networkInfraType": fabric_mode,
        "vlans": vlan_range,
        "vxlans": vxlan_range,
        "fwdMode": fwd_mode,
        "arpMode": arp_mode,
        "pvtSubnet": private_subnet,
    }
    if all(value is None for value in changes.values()):
        raise usage_error("Nothing to set: give at least one setting")
    GLOBAL.update(changes)
    click.echo("Updating global settings")
