"""``netctl app-profile``: application profiles, the set of groups pushed to ACI as one unit."""

from __future__ import annotations

import click

from netmaster.cli.framework import (
    NetctlGroup,
    Resource,
    add_delete_command,
    add_inspect_command,
    add_list_command,
    compact,
    get_client,
    json_option,
    quiet_option,
    split_list,
    tenant_option,
)
from netmaster.cli.output import Column, echo_json, echo_listing

APP_PROFILE = Resource(
    plural="appProfiles",
    label="AppProfile",
    name_field="appProfileName",
    columns=(
        Column("Tenant", "tenantName"),
        Column("AppProfile", "appProfileName"),
        Column("Groups", "endpointGroups"),
    ),
)

MEMBER_COLUMNS = (
    Column("Tenant", "tenantName"),
    Column("AppProfile", "appProfileName"),
    Column("Group", "group"),
)

group_option = click.option(
    "-g", "--group", "groups", multiple=True, help="Endpoint groups, comma separated (or repeated)."
)


@click.group(cls=NetctlGroup, help="Application profile manipulation tools.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


add_list_command(cli, APP_PROFILE, "List application profiles.")
add_inspect_command(cli, APP_PROFILE, "APP_PROFILE", "Inspect an application profile.")
add_delete_command(cli, APP_PROFILE, "APP_PROFILE", "Delete an application profile.")


def _body(tenant: str, name: str, groups: tuple[str, ...]) -> dict[str, object]:
    return {"tenantName": tenant, "appProfileName": name, "endpointGroups": split_list(groups)}


@cli.command("create")
@click.argument("name", metavar="APP_PROFILE")
@tenant_option
@group_option
def create(name: str, tenant: str, groups: tuple[str, ...]) -> None:
    """Create an application profile from endpoint groups."""
    APP_PROFILE.create(tenant, name, _body(tenant, name, groups))


@cli.command("update")
@click.argument("name", metavar="APP_PROFILE")
@tenant_option
@group_option
def update(name: str, tenant: str, groups: tuple[str, ...]) -> None:
    """Replace the endpoint groups of an existing application profile.

    \f
    Unlike Contiv (which silently created a missing profile here), the profile is looked up first, so a
    typo in the name is reported instead of creating a second profile.
    """
    client = get_client()
    key = APP_PROFILE.key(tenant, name)
    client.get(APP_PROFILE.plural, key)
    client.post(APP_PROFILE.plural, key, compact(_body(tenant, name, groups)))
    click.echo(f"Updating {APP_PROFILE.label} {key}")


@cli.command("group-ls", aliases=["group-list"])
@click.argument("name", metavar="APP_PROFILE")
@tenant_option
@json_option
@quiet_option
def group_ls(name: str, tenant: str, as_json: bool, quiet: bool) -> None:
    """List the endpoint groups of an application profile."""
    profile = get_client().get(APP_PROFILE.plural, APP_PROFILE.key(tenant, name))
    if as_json:
        echo_json(profile)
        return
    members = [
        {"tenantName": profile.get("tenantName", tenant), "appProfileName": name, "group": group}
        for group in profile.get("endpointGroups") or []
    ]
    echo_listing(members, MEMBER_COLUMNS, "group", quiet=quiet)
