"""``netctl netprofile``: QoS profiles (bandwidth, DSCP, burst) that endpoint groups reference."""

from __future__ import annotations

import re

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    tenant_option,
)
from netmaster.cli.output import Column, Row

_UNITS = (("g", "Gbps"), ("m", "Mbps"), ("k", "Kbps"))


def display_bandwidth(profile: Row) -> str:
    """Show ``10 mbps``, ``10Mb`` and ``10mbps`` alike as ``10Mbps``, as Contiv's table did."""
    raw = str(profile.get("bandwidth") or "")
    number = re.search(r"[0-9]+", raw)
    if not number:
        return raw
    lowered = raw.lower()
    unit = next((label for letter, label in _UNITS if letter in lowered), "")
    return number.group(0) + unit


NETPROFILE = Resource(
    plural="netprofiles",
    label="netprofile",
    name_field="profileName",
    columns=(
        Column("Name", "profileName"),
        Column("Tenant", "tenantName"),
        Column("Bandwidth", display_bandwidth),
        Column("DSCP", "DSCP"),
        Column("burst size", "burst"),
    ),
)


@click.group(cls=NetctlGroup, help="Network profile manipulation tools.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, NETPROFILE, "List network profiles.")
add_inspect_command(cli, NETPROFILE, "NETPROFILE", "Inspect a network profile.")
add_delete_command(cli, NETPROFILE, "NETPROFILE", "Delete a network profile.")


@cli.command("create")
@click.argument("name", metavar="NETPROFILE")
@tenant_option
@click.option("-b", "--bandwidth", help="Bandwidth, e.g. '10 kbps', '100mbps', '1gbps'.")
@click.option("-d", "--dscp", type=int, default=0, help="DSCP value (0-63).")
@click.option("-s", "--burst", type=int, default=0, help="Burst size in kilobytes.")
def create(name: str, tenant: str, bandwidth: str | None, dscp: int, burst: int) -> None:
    """Create a network profile (re-running it on an existing profile updates it)."""
    NETPROFILE.create(
        tenant,
        name,
        {"tenantName": tenant, "profileName": name, "bandwidth": bandwidth, "DSCP": dscp, "burst": burst},
    )
