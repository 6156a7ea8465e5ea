"""``netctl external-contracts``: groups of APIC contracts that endpoint groups consume or provide."""

from __future__ import annotations

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    tenant_option,
    usage_error,
)
from netmaster.cli.output import Column

EXT_CONTRACTS = Resource(
    plural="extContractsGroups",
    label="ExternalContracts",
    name_field="contractsGroupName",
    columns=(
        Column("Tenant", "tenantName"),
        Column("Name", "contractsGroupName"),
        Column("Type", "contractsType"),
        Column("Contracts", "contracts"),
    ),
)


@click.group(cls=NetctlGroup, help="External contracts (ACI) manipulation tools.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, EXT_CONTRACTS, "List external contracts groups.")
add_inspect_command(cli, EXT_CONTRACTS, "NAME", "Inspect an external contracts group.")
add_delete_command(cli, EXT_CONTRACTS, "NAME", "Delete an external contracts group.")


@cli.command("create")
@click.argument("name", metavar="NAME")
@tenant_option
@click.option("-c", "--consumed", is_flag=True, help="The contracts are consumed.")
@click.option("-p", "--provided", is_flag=True, help="The contracts are provided.")
@click.option("-a", "--contract", "contracts", multiple=True, help="APIC contract DN, e.g. uni/tn-common/brc-default.")
def create(name: str, tenant: str, consumed: bool, provided: bool, contracts: tuple[str, ...]) -> None:
    """Create an external contracts group."""
    if consumed == provided:
        raise usage_error(
            "Cannot use both provided and consumed" if consumed else "Either provided or consumed must be specified",
            show_help=False,
        )
    if not contracts:
        raise usage_error("Contracts not provided", show_help=False)
    EXT_CONTRACTS.create(
        tenant,
        name,
        {
            "tenantName": tenant,
            "contractsGroupName": name,
            "contractsType": "consumed" if consumed else "provided",
            "contracts": list(contracts),
        },
    )
