"""``netctl``: the command-line client of netmaster, compatible with Contiv's netctl.

Command tree, flags, aliases, outputs and exit codes follow Contiv (``netplugin:netctl``) so that
existing scripts keep working; docs/netctl.md lists every command and the few deliberate differences.
Run as the ``netctl`` console script or ``python -m netmaster.cli.netctl``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from netmaster.cli.client import DEFAULT_NETMASTER
from netmaster.cli.commands import (
    aci_gw,
    agent,
    app_profile,
    bgp,
    endpoint,
    export,
    ext_contracts,
    global_settings,
    group,
    kubernetes,
    netprofile,
    network,
    policy,
    service,
    tenant,
    version,
)
from netmaster.cli.errors import EXIT_HELP
from netmaster.cli.framework import RootGroup, Settings


@click.group(cls=RootGroup, name="netctl")
@click.option(
    "--netmaster",
    envvar="NETMASTER",
    default=DEFAULT_NETMASTER,
    show_default=True,
    metavar="URL",
    help="netmaster URL (env NETMASTER).",
)
@click.option(
    "--token",
    envvar="NETMASTER_TOKEN",
    default=None,
    metavar="TOKEN",
    help="API token sent as 'Authorization: Bearer' (env NETMASTER_TOKEN).",
)
@click.option(
    "--insecure",
    envvar="INSECURE",
    is_flag=True,
    help="Do not verify netmaster's TLS certificate (env INSECURE).",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for netmaster.")
@click.pass_context
def cli(ctx: click.Context, netmaster: str, token: str | None, insecure: bool, timeout: float) -> None:
    """Manage tenants, networks, groups, policies and the rest of netmaster's configuration."""
    ctx.obj = Settings(netmaster=netmaster, token=token or None, insecure=insecure, timeout=timeout)


COMMAND_GROUPS: tuple[tuple[str, click.Command], ...] = (
    ("version", version.cli),
    ("tenant", tenant.cli),
    ("network", network.cli),
    ("group", group.cli),
    ("endpoint", endpoint.cli),
    ("netprofile", netprofile.cli),
    ("policy", policy.cli),
    ("external-contracts", ext_contracts.cli),
    ("global", global_settings.cli),
    ("aci-gw", aci_gw.cli),
    ("bgp", bgp.cli),
    ("app-profile", app_profile.cli),
    ("service", service.cli),
    ("export", export.cli),
    ("agent", agent.cli),
    ("apply", kubernetes.apply_cli),
    ("delete", kubernetes.delete_cli),
)
for _name, _command in COMMAND_GROUPS:
    cli.add_command(_command, _name)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; exits with Contiv's exit code.

    A closed pipe (``netctl ep ls | head -1``) ends the run quietly instead of with a traceback.
    """
    try:
        return cli.main(args=list(argv) if argv is not None else None, prog_name="netctl")
    except BrokenPipeError:
        # Python's recommended handling: point stdout at devnull so the interpreter's final flush
        # does not raise again, then exit like a process killed by SIGPIPE would be noticed.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_HELP)


if __name__ == "__main__":
    main()
