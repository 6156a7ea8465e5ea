"""``netctl aci-gw``: how netmaster's ACI gateway binds endpoint groups to the fabric."""

from __future__ import annotations

import click

from netmaster.cli.framework import NetctlGroup
from netmaster.cli.singleton import Singleton, add_singleton_commands

ACI_GW = Singleton(
    plural="aciGws",
    key="aciGw",
    label="aci-gw",
    fields=(
        ("Path bindings", "pathBindings"),
        ("Node bindings", "nodeBindings"),
        ("Physical domain", "physicalDomain"),
        ("Enforce policies", "enforcePolicies"),
        ("Include Common-Tenant", "includeCommonTenant"),
    ),
    # Contiv's flag defaults, used when the object does not exist yet.
    defaults={"name": "aciGw", "enforcePolicies": "yes", "includeCommonTenant": "no"},
)


@click.group(cls=NetctlGroup, help="ACI gateway settings.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_singleton_commands(cli, ACI_GW)


@cli.command("set")
@click.option(
    "-p",
    "--path-bindings",
    help="Blank or comma separated paths, e.g. topology/pod-1/paths-101/pathep-[eth1/14].",
)
@click.option("-n", "--node-bindings", help="Blank or comma separated nodes, e.g. topology/pod-1/node-101.")
@click.option("-d", "--phys-dom", help="ACI physical domain name, e.g. containerDom.")
@click.option("-e", "--enforce-policies", help="Enforce security policies (yes or no; new objects: yes).")
@click.option(
    "-i",
    "--include-common-tenant",
    help="Also look up objects in tenant common (yes or no; new objects: no).",
)
def set_aci_gw(
    path_bindings: str | None,
    node_bindings: str | None,
    phys_dom: str | None,
    enforce_policies: str | None,
    include_common_tenant: str | None,
) -> None:
    """Create or change the aci-gw settings; settings not given keep their current value.

    \f
    Contiv reset every setting not on the command line to its flag default; here only the given ones
    change (pass an empty string, e.g. ``-p ''``, to clear one).
    """
    ACI_GW.update(
        {
            "pathBindings": path_bindings,
            "nodeBindings": node_bindings,
            "physicalDomain": phys_dom,
            "enforcePolicies": enforce_policies,
            "includeCommonTenant": include_common_tenant,
        }
    )
    click.echo("Updating aci-gw settings")
