"""The click machinery every netctl command group is built from.

Three things live here so that no command module repeats them:

* :class:`NetctlGroup` adds Contiv's aliases (``ls``/``list``, ``rm``/``delete``, ``net``, ``ep``)
  and, on the root group, maps every failure to Contiv's exit codes (usage problems exit 1 with the
  sub-command help, REST errors exit 3, an unreachable netmaster exits 1);
* the shared flags (``-t/--tenant``, ``-a/--all``, ``-j/--json``, ``-q/--quiet``);
* :class:`Resource` plus :func:`add_list_command`, :func:`add_inspect_command` and
  :func:`add_delete_command`, which generate the ``ls``/``inspect``/``rm`` commands that are the same
  for every object type apart from the route and the table columns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from netmaster.cli.client import DEFAULT_NETMASTER, NetctlClient
from netmaster.cli.errors import EXIT_HELP, EXIT_OK, BadUsage
from netmaster.cli.output import Column, Row, echo_json, echo_listing

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 110}

F = Callable[..., Any]


# Command classes -------------------------------------------------------------------------------


class NetctlCommand(click.Command):
    """A command that may also answer to other names (Contiv: ``rm``/``delete``, ``ls``/``list``)."""

    def __init__(self, *args: Any, aliases: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.aliases = tuple(aliases)


class NetctlGroup(click.Group):
    """A command group that resolves aliases and lists them next to the command names in help."""

    command_class = NetctlCommand

    def __init__(self, *args: Any, aliases: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.aliases = tuple(aliases)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for candidate in self.commands.values():
            if cmd_name in getattr(candidate, "aliases", ()):
                return candidate
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            label = ", ".join([name, *getattr(command, "aliases", ())])
            rows.append((label, command.get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


NetctlGroup.group_class = NetctlGroup


class RootGroup(NetctlGroup):
    """The ``netctl`` root: one place that turns exceptions into Contiv's exit codes.

    click's own convention is exit 2 for usage errors; Contiv's netctl exits 1 and prints the help of
    the sub-command that was misused, and scripts written for it rely on that. Overriding ``main``
    (rather than wrapping it in the console-script function) keeps ``CliRunner`` tests faithful.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else EXIT_OK
        except click.exceptions.NoArgsIsHelpError as exc:
            # A bare group (``netctl``, ``netctl network``) asks for help: not an error.
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            code = EXIT_OK
        except click.UsageError as exc:
            _show_usage_error(exc)
            code = EXIT_HELP
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = EXIT_HELP
        if standalone_mode:
            sys.exit(code)
        return code


def _show_usage_error(exc: click.UsageError) -> None:
    """Contiv style: the misused command's help, then the error (both on stderr)."""
    if exc.ctx is not None and getattr(exc, "show_help", True):
        click.echo(exc.ctx.get_help(), err=True)
        click.echo("", err=True)
    click.echo(f"ERROR: {exc.format_message()}", err=True)


# Invocation settings and the client ------------------------------------------------------------


@dataclass
class Settings:
    """Global flags of one netctl run; the HTTP client is built on first use and closed at exit."""

    netmaster: str = DEFAULT_NETMASTER
    token: str | None = None
    insecure: bool = False
    timeout: float = 30.0
    _client: NetctlClient | None = field(default=None, repr=False)

    def client(self) -> NetctlClient:
        if self._client is None:
            self._client = NetctlClient(
                self.netmaster, token=self.token, insecure=self.insecure, timeout=self.timeout
            )
            click.get_current_context().find_root().call_on_close(self._client.close)
        return self._client


def get_client() -> NetctlClient:
    """The client for the current invocation (commands call this instead of threading ``ctx``)."""
    settings = click.get_current_context().find_object(Settings)
    if settings is None:  # a sub-command invoked on its own, e.g. in a unit test
        settings = Settings()
        click.get_current_context().obj = settings
    return settings.client()


def usage_error(message: str, *, show_help: bool = True) -> BadUsage:
    """Build a usage error bound to the current command, so its help is what gets printed."""
    return BadUsage(message, click.get_current_context(), show_help=show_help)


# Shared flags ----------------------------------------------------------------------------------

tenant_option = click.option(
    "-t", "--tenant", default="default", show_default=True, metavar="TENANT", help="Name of the tenant."
)
all_option = click.option("-a", "--all", "all_tenants", is_flag=True, help="List items of every tenant.")
json_option = click.option("-j", "--json", "as_json", is_flag=True, help="Output in JSON format.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Only display the name field.")


def apply_decorators(func: F, decorators: Sequence[Callable[[F], F]]) -> F:
    """Apply decorators listed top-down, as if they were written above ``func``."""
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def compact(body: dict[str, Any]) -> dict[str, Any]:
    """Drop fields the user did not give (``None`` or empty strings), as Contiv's client did
    (``omitempty``), so netmaster applies its own defaults instead of receiving blanks."""
    return {k: v for k, v in body.items() if v is not None and v != ""}


def split_list(values: Sequence[str]) -> list[str]:
    """Accept repeated flags and comma lists alike (``-p a -p b`` or ``-p a,b``)."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


# Generic object commands -----------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """What netctl needs to know about one Contiv object type."""

    plural: str
    """Collection name in the route (``networks``, ``policys``, ``Bgps``)."""
    label: str
    """Word used in messages: ``Creating <label> <key>``."""
    name_field: str
    """JSON field holding the object's own name (printed by ``-q``)."""
    columns: tuple[Column, ...]
    tenant_scoped: bool = True
    """Keys are ``tenant:name`` (commands take ``-t``)."""
    listed_by_tenant: bool | None = None
    """``ls`` filters by ``-t``/``-a``; defaults to ``tenant_scoped`` (endpoints differ: their key is
    an id, yet their records name a tenant)."""

    @property
    def filters_by_tenant(self) -> bool:
        return self.tenant_scoped if self.listed_by_tenant is None else self.listed_by_tenant

    def key(self, tenant: str | None, name: str) -> str:
        """Contiv keys are the key fields joined by ``:`` (``tenant:name``)."""
        return f"{tenant}:{name}" if self.tenant_scoped else name

    def sort_key(self, obj: Row) -> tuple[str, str]:
        return (str(obj.get("tenantName", "")), str(obj.get(self.name_field, "")))

    def create(self, tenant: str | None, name: str, body: dict[str, Any]) -> Any:
        """POST the object and report it the way Contiv did (``Creating network default:net1``)."""
        key = self.key(tenant, name)
        result = get_client().post(self.plural, key, compact(body))
        click.echo(f"Creating {self.label} {key}")
        return result

    def delete(self, tenant: str | None, name: str) -> None:
        """DELETE the object and report it once netmaster has accepted (``Deleting network default:net1``)."""
        key = self.key(tenant, name)
        get_client().delete(self.plural, key)
        click.echo(f"Deleting {self.label} {key}")


def fetch_objects(resource: Resource, tenant: str | None) -> list[Row]:
    """List a collection, filtered to one tenant unless ``tenant`` is ``None``.

    As in Contiv, the tenant is looked up first, so a misspelt tenant is an error (exit 3) and not a
    silently empty table.
    """
    client = get_client()
    if tenant is not None:
        client.get("tenants", tenant)
    objects = client.list(resource.plural)
    if tenant is not None:
        objects = [o for o in objects if o.get("tenantName") == tenant]
    return sorted(objects, key=resource.sort_key)


def add_list_command(group: click.Group, resource: Resource, help_text: str) -> click.Command:
    """``<group> ls``: table, ``-j`` JSON or ``-q`` names; tenant-scoped types get ``-t`` and ``-a``."""

    def list_objects(as_json: bool, quiet: bool, tenant: str | None = None, all_tenants: bool = False) -> None:
        scope = tenant if resource.filters_by_tenant and not all_tenants else None
        objects = fetch_objects(resource, scope)
        echo_listing(objects, resource.columns, resource.name_field, as_json=as_json, quiet=quiet)

    options = [json_option, quiet_option]
    if resource.filters_by_tenant:
        options = [tenant_option, all_option, *options]
    command = group.command("ls", aliases=["list"], help=help_text)
    return command(apply_decorators(list_objects, options))


def _name_argument(metavar: str) -> Callable[[F], F]:
    return click.argument("name", metavar=metavar)


def add_inspect_command(group: click.Group, resource: Resource, metavar: str, help_text: str) -> click.Command:
    """``<group> inspect NAME``: netmaster's ``{"Config": …, "Oper": …}`` as JSON."""

    def inspect_object(name: str, tenant: str | None = None) -> None:
        echo_json(get_client().inspect(resource.plural, resource.key(tenant, name)))

    options = [_name_argument(metavar)]
    if resource.tenant_scoped:
        options.append(tenant_option)
    return group.command("inspect", help=help_text)(apply_decorators(inspect_object, options))


def add_delete_command(group: click.Group, resource: Resource, metavar: str, help_text: str) -> click.Command:
    """``<group> rm NAME`` (alias ``delete``); reports ``Deleting <label> <key>`` once it is gone."""

    def delete_object(name: str, tenant: str | None = None) -> None:
        resource.delete(tenant, name)

    options = [_name_argument(metavar)]
    if resource.tenant_scoped:
        options.append(tenant_option)
    command = group.command("rm", aliases=["delete"], help=help_text)
    return command(apply_decorators(delete_object, options))
