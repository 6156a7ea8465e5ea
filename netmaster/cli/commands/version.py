"""``netctl version``: client and server versions, the first thing to compare when debugging."""

from __future__ import annotations

from importlib import metadata

import click

import netmaster
from netmaster.cli.framework import NetctlCommand, get_client, json_option
from netmaster.cli.output import echo_fields, echo_json


def client_version() -> str:
    """The installed distribution's version, or the package's own when run from a source checkout."""
    try:
        return metadata.version("contiv")
    except metadata.PackageNotFoundError:
        return netmaster.__version__


@click.command("version", cls=NetctlCommand)
@json_option
def cli(as_json: bool) -> None:
    """Show the netctl and netmaster versions."""
    client = {"version": client_version()}
    if not as_json:
        click.echo("Client Version:")
        echo_fields([("Version", client["version"])])
        click.echo("")
    server = get_client().version()
    if as_json:
        echo_json({"client": client, "server": server})
        return
    click.echo("Server Version:")
    if isinstance(server, dict):
        echo_fields([(str(k), v) for k, v in server.items()])
    else:
        click.echo(str(server))
