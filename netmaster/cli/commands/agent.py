"""``netctl agent``: the host agents netmaster knows, and their datapath (an addition to Contiv's netctl).

``agent ls`` lists the agent records. ``agent inspect driver|endpoint`` shows what an agent has
programmed (endpoints, VTEPs, flows per pipeline stage), reached either through netmaster (``--host
h1``: netmaster forwards to the URL the agent published with ``--inspect-listen``) or directly
(``--agent unix:///run/contiv/agent.sock`` or ``--agent http://127.0.0.1:9101``, on the host itself).
Inspect output is JSON, like every Contiv inspect command.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse

import click
import httpx

from netmaster.cli.client import NetctlClient
from netmaster.cli.errors import EXIT_HELP, NetctlError
from netmaster.cli.framework import NetctlGroup, Settings, get_client, json_option
from netmaster.cli.output import Column, echo_json, echo_table

AGENT_COLUMNS = (
    Column("Host", "hostLabel"),
    Column("VTEP IP", "vtepIP"),
    Column("Control IP", "ctrlIP"),
    Column("Version", "version"),
    Column("Inspect URL", "inspectURL"),
    # endpoints the agent could not re-claim after a partition: their address went to another endpoint
    Column("Conflicts", lambda a: [c.get("endpointID") for c in a.get("conflicts") or ()]),
)


def agent_client(target: str) -> NetctlClient:
    """A client for one agent's local API: ``unix:///path`` (or ``unix:/path``) or ``http://host:port``."""
    settings = click.get_current_context().find_object(Settings) or Settings()
    url = urlparse(target)
    if url.scheme == "unix":
        if not url.path:
            raise NetctlError(f"--agent {target!r}: expected unix:///path/to/socket", EXIT_HELP)
        transport = httpx.HTTPTransport(uds=url.path)
        client = NetctlClient("http://agent", timeout=settings.timeout, transport=transport, peer="agent",
                                 display_url=target)
    elif url.scheme == "http" and url.hostname:
        client = NetctlClient(target, token=settings.token, timeout=settings.timeout, peer="agent")
    else:
        raise NetctlError(f"--agent {target!r}: expected unix:///path or http://HOST:PORT", EXIT_HELP)
    click.get_current_context().find_root().call_on_close(client.close)
    return client


def _fetch(host: str | None, agent: str | None, agent_path: str, proxy_path: str) -> Any:
    if bool(host) == bool(agent):
        raise click.UsageError("give exactly one of --host (through netmaster) or --agent (directly)")
    if agent:
        return agent_client(agent).request("GET", agent_path)
    return get_client().request("GET", f"/api/v1/inspect/agents/{quote(host or '', safe='')}/{proxy_path}")


def _target_options(func: Any) -> Any:
    func = click.option("--agent", "agent", metavar="URL",
                        help="reach the agent directly: unix:///path.sock or http://HOST:PORT")(func)
    return click.option("--host", "host", metavar="HOST",
                        help="the agent's host label; netmaster forwards to the agent")(func)


@click.group(cls=NetctlGroup, help="Host agents and their datapath.")
def cli() -> None:
    """Group only; the sub-commands do the work."""


@cli.command("ls", aliases=["list"])
@json_option
def list_agents(as_json: bool) -> None:
    """List the agents registered with netmaster."""
    agents = sorted(get_client().request("GET", "/api/v1/agents/") or [], key=lambda a: a["hostLabel"])
    if as_json:
        echo_json(agents)
    else:
        echo_table(AGENT_COLUMNS, agents)


@cli.group("inspect", cls=NetctlGroup, help="What an agent has programmed.")
def inspect() -> None:
    """Group only."""


@inspect.command("driver")
@_target_options
@click.option("--flows", is_flag=True, help="include the flows of every pipeline stage")
@click.option("--rules", is_flag=True, help="include packets and bytes per policy rule")
def inspect_driver(host: str | None, agent: str | None, flows: bool, rules: bool) -> None:
    """The agent's datapath: endpoints, VTEPs, flow counts per stage (and flows with --flows, per-rule
    packet and byte counters with --rules)."""
    params = [p for p, on in (("flows=1", flows), ("rules=1", rules)) if on]
    query = "?" + "&".join(params) if params else ""
    echo_json(_fetch(host, agent, "/inspect/driver" + query, "driver" + query))


@inspect.command("endpoint")
@_target_options
@click.argument("endpoint_id", metavar="ENDPOINT_ID")
def inspect_endpoint(host: str | None, agent: str | None, endpoint_id: str) -> None:
    """One endpoint as the agent programmed it, with its flows."""
    quoted = quote(endpoint_id, safe="")
    echo_json(_fetch(host, agent, f"/inspect/endpoint/{quoted}", f"endpoint/{quoted}"))
