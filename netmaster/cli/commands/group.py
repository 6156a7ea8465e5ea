"""``netctl group``: endpoint groups (EPGs), the unit policies, profiles and contracts attach to."""

from __future__ import annotations

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    split_list,
    tenant_option,
)
from netmaster.cli.output import Column

GROUP = Resource(
    plural="endpointGroups",
    label="EndpointGroup",
    name_field="groupName",
    columns=(
        Column("Tenant", "tenantName"),
        Column("Group", "groupName"),
        Column("Network", "networkName"),
        Column("IP Pool", "ipPool"),
        Column("CfgdTag", "cfgdTag"),
        Column("Policies", "policies"),
        Column("Network profile", "netProfile"),
        Column("Ext Contracts", "extContractsGrps"),
    ),
)


@click.group(cls=NetctlGroup, help="Endpoint group manipulation tools.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, GROUP, "List endpoint groups.")
add_inspect_command(cli, GROUP, "GROUP", "Inspect an endpoint group (tags, endpoints, addresses).")
add_delete_command(cli, GROUP, "GROUP", "Delete an endpoint group.")


@cli.command("create", short_help="Create (or update) an endpoint group.")
@click.argument("network", metavar="NETWORK")
@click.argument("name", metavar="GROUP")
@tenant_option
@click.option("-p", "--policy", "policies", multiple=True, help="Policy to attach (repeatable, or a,b).")
@click.option("-n", "--networkprofile", help="Network profile to attach.")
@click.option("-e", "--external-contract", "contracts", multiple=True, help="External contracts group (repeatable).")
@click.option("-r", "--ip-pool", help="IP address range, e.g. 10.36.0.1-10.36.0.10.")
@click.option("--epg-tag", "--tag", "epg_tag", help="Configured group tag.")
def create(
    network: str,
    name: str,
    tenant: str,
    policies: tuple[str, ...],
    networkprofile: str | None,
    contracts: tuple[str, ...],
    ip_pool: str | None,
    epg_tag: str | None,
) -> None:
    """Create an endpoint group on NETWORK (re-running it on an existing group updates it)."""
    GROUP.create(
        tenant,
        name,
        {
            "tenantName": tenant,
            "networkName": network,
            "groupName": name,
            "netProfile": networkprofile,
            "ipPool": ip_pool,
            "policies": split_list(policies),
            "extContractsGrps": split_list(contracts),
            "cfgdTag": epg_tag,
        },
    )
