"""``netctl tenant``: tenants are the namespace (and VRF) every other object lives in."""

from __future__ import annotations

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
)
from netmaster.cli.output import Column

TENANT = Resource(
    plural="tenants",
    label="tenant",
    name_field="tenantName",
    # Source: "apic" for tenants netmaster imported from the APIC in ACI mode, else "netmaster".
    columns=(
        Column("Name", "tenantName"),
        Column("Default Network", "defaultNetwork"),
        Column("Source", lambda t: t.get("source") or "netmaster"),
    ),
    tenant_scoped=False,
)


@click.group(cls=NetctlGroup, help="Tenant manipulation tools.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, TENANT, "List tenants.")
add_inspect_command(cli, TENANT, "TENANT", "Inspect a tenant (configuration and totals).")
add_delete_command(cli, TENANT, "TENANT", "Delete a tenant (refused while it holds objects).")


@cli.command("create")
@click.argument("name", metavar="TENANT")
def create(name: str) -> None:
    """Create a tenant."""
    TENANT.create(None, name, {"tenantName": name})
