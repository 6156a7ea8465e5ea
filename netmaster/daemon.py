"""The ``netmaster`` command: serve the API on a store, with Contiv's flags and environment names.

Every flag also reads ``CONTIV_NETMASTER_<FLAG>`` (``--cluster-store`` from
``CONTIV_NETMASTER_CLUSTER_STORE``), as Contiv's daemon did. Startup problems (a bad store URL, an
unwritable state directory, a busy port) end the process with one clear line, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn
import uvloop

from netmaster import __version__
from netmaster.aci.client import DEFAULT_URL as DEFAULT_ACI_GW_URL
from netmaster.aci.controller import AciSettings
from netmaster.api.app import ApiSettings, create_app
from netmaster.api.watch import FLUSH_INTERVAL, RING_EVENTS, WATCHER_BUFFER
from netmaster.backup import cli as backup_cli
from netmaster.ha.endpoint_gc import DEFAULT_GRACE
from netmaster.ha.leader import DEFAULT_TTL
from netmaster.logs import setup_logging
from netmaster.store import DEFAULT_STORE_URL, open_store
from netmaster.store.base import StoreError
from netmaster.store.cache import STALENESS
from netmaster.store.etcd_options import redact_url

log = logging.getLogger("netmaster")

EXIT_INVALID_ARGS = 22  # Contiv's exit code for invalid arguments


def _env(flag: str, default: str | None) -> str | None:
    return os.environ.get("CONTIV_NETMASTER_" + flag.upper().replace("-", "_"), default)


DESCRIPTION = (
    "Contiv-compatible policy networking server: REST API (tenants, networks, endpoint groups, "
    "policies, app profiles, ...), resource allocator (IPs, VLANs, VXLAN ids, EPG ids) and the "
    "source of truth that agents and the ACI gateway follow. Each flag can also be set with "
    "the environment variable CONTIV_NETMASTER_<FLAG> (e.g. CONTIV_NETMASTER_CLUSTER_STORE)."
)
EPILOG = (
    "Backup and move: 'netmaster export [--cluster-store URL] > state.json' writes the whole state; "
    "'netmaster import [--cluster-store URL] [--force] < state.json' loads it into an empty store "
    "(see 'netmaster export --help' and 'netmaster import --help')."
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netmaster", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"netmaster {__version__}")
    p.add_argument(
        "--listen-url",
        "--external-address",
        default=_env("listen-url", "127.0.0.1:9999"),
        help="HOST:PORT to serve the API on (default 127.0.0.1:9999; use 0.0.0.0:9999 to serve all interfaces)",
    )
    p.add_argument(
        "--cluster-store",
        default=_env("cluster-store", DEFAULT_STORE_URL),
        help=(
            "state store URL: sqlite:///PATH (embedded, default %(default)s), memory:// (throw-away), "
            "etcd://HOST:PORT[,HOST:PORT] or etcds://HOST:PORT?ca=FILE&cert=FILE&key=FILE (cluster)"
        ),
    )
    p.add_argument(
        "--infra",
        "--infra-type",
        choices=["default", "aci"],
        default=_env("infra", None),
        help="fabric mode: default (policy enforced in OVS) or aci (delegated to the ACI fabric)",
    )
    p.add_argument(
        "--fwd-mode",
        "--forward-mode",
        choices=["bridge", "routing"],
        default=_env("fwd-mode", None),
        help="forwarding mode for all networks (default bridge on first start)",
    )
    p.add_argument(
        "--cluster-mode",
        "--mode",
        choices=["docker", "kubernetes", "swarm-mode", "test"],
        default=_env("cluster-mode", "docker"),
        help="the container orchestrator in use (shown in global inspect)",
    )
    p.add_argument(
        "--token",
        default=_env("token", None),
        help="require 'Authorization: Bearer TOKEN' on the API (prefer the environment variable)",
    )
    p.add_argument(
        "--aci-gw-url",
        default=_env("aci-gw-url", DEFAULT_ACI_GW_URL),
        help="ACI mode: URL of aci-gw, where app profiles are pushed and APIC tenants read (default %(default)s)",
    )
    p.add_argument(
        "--aci-gw-token",
        default=_env("aci-gw-token", None),
        help="ACI mode: bearer token aci-gw requires (prefer CONTIV_NETMASTER_ACI_GW_TOKEN)",
    )
    _seconds_flag(p, "--aci-tenant-sync-interval", 30, "ACI mode: seconds between imports of the APIC's tenants")
    _seconds_flag(p, "--aci-retry-max", 30, "ACI mode: longest wait in seconds between retries of a failed push")
    _seconds_flag(
        p,
        "--leader-ttl",
        DEFAULT_TTL,
        "seconds a leader's lease lives without renewal; another netmaster takes over within it",
    )
    _seconds_flag(
        p,
        "--endpoint-gc-grace",
        DEFAULT_GRACE,
        "seconds a host may be without a live agent record before the leader deletes its endpoints "
        "and releases their addresses; 0 disables",
    )
    p.add_argument(
        "--compat-errors",
        action="store_true",
        default=(_env("compat-errors", "") or "").lower() in ("1", "true", "yes"),
        help=(
            "answer refusals (bad input, not found, conflict) as Contiv's netmaster did: HTTP 500 with the "
            "reason as plain text, which Contiv's own netctl prints (it shows only the status line of a 4xx); "
            'default: 4xx with a JSON body {"error": reason}'
        ),
    )
    _number_flag(
        p,
        "--watch-buffer",
        WATCHER_BUFFER,
        "bytes of events one watch stream may have waiting; a watcher further behind (one that does not "
        "read) is cut off with a 410 line and re-lists instead of growing netmaster's memory",
    )
    _number_flag(
        p,
        "--watch-history",
        RING_EVENTS,
        "recent events kept in memory (at most 8 MiB of them) so that a watcher resuming from a recent "
        "revision is served without a watch of the store of its own",
    )
    p.add_argument(
        "--agent-span",
        choices=("tenant", "network"),
        default=_env("agent-span", "tenant"),
        help=(
            "which endpoints an agent is sent (netmaster.api.span): 'tenant' (default), every endpoint of the "
            "tenants its host has endpoints in, which every agent feature needs (DNS names, service providers "
            "and Kubernetes policies are per tenant); 'network', only those of the networks its host has "
            "endpoints on, widened to the tenant for routing, ACI and rules naming a group: fewer lines per "
            "endpoint change, for clusters whose agents run without --dns, services or NetworkPolicies"
        ),
    )
    _seconds_flag(
        p,
        "--watch-flush",
        FLUSH_INTERVAL,
        "seconds a watch stream's new endpoint lines may wait for more to send them in one write (with a "
        "thousand agents a write per line and agent is most of netmaster's work; 0.05 halves it); other "
        "lines go at once. 0 sends each line at once",
    )
    _seconds_flag(
        p,
        "--read-staleness",
        STALENESS,
        "seconds: reads are served from memory and see every write of this netmaster, and every write of "
        "other netmasters committed this long before; 0 makes every read ask the store for its revision "
        "first (one round trip on etcd)",
    )
    p.add_argument("--log-level", default=_env("log-level", "info"), choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default=_env("log-format", "json"), choices=["json", "text"])
    return p


def _seconds_flag(p: argparse.ArgumentParser, flag: str, default: float, help_text: str) -> None:
    """A duration flag in seconds, defaulting to its CONTIV_NETMASTER_ variable, then to ``default``."""
    _number_flag(p, flag, default, help_text, float)


def _number_flag(p: argparse.ArgumentParser, flag: str, default: float, help_text: str, kind: type = int) -> None:
    """A numeric flag, defaulting to its CONTIV_NETMASTER_ variable, then to ``default``."""
    env_default = kind(_env(flag.removeprefix("--"), str(default)) or default)
    p.add_argument(flag, type=kind, default=env_default, help=help_text + " (default %(default)s)")


def _bind(listen_url: str) -> socket.socket:
    host, sep, port_text = listen_url.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"invalid --listen-url {listen_url!r}: expected HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every keep-alive response waits out the peer's 40 ms delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port_text)))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {listen_url}: {exc.strerror or exc}") from exc
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def fail(message: str, code: int = 1) -> int:
    print(f"netmaster: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in backup_cli.COMMANDS:
        return backup_cli.main(argv[0], argv[1:], _env("cluster-store", None))
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        store = open_store(args.cluster_store)
    except StoreError as exc:
        return fail(str(exc), EXIT_INVALID_ARGS)
    try:
        sock = _bind(args.listen_url)
    except ValueError as exc:
        return fail(str(exc))
    settings = ApiSettings(
        infra=args.infra,
        fwd_mode=args.fwd_mode,
        cluster_mode=args.cluster_mode,
        token=args.token,
        listen_url=args.listen_url,
        store_url=args.cluster_store,
        leader_ttl=args.leader_ttl,
        endpoint_gc_grace=max(args.endpoint_gc_grace, 0.0),
        compat_errors=args.compat_errors,
        watch_buffer=max(args.watch_buffer, 1024),
        watch_history=max(args.watch_history, 1),
        agent_span=args.agent_span,
        watch_flush=max(args.watch_flush, 0.0),
        read_staleness=max(args.read_staleness, 0.0),
        aci=AciSettings(
            gw_url=args.aci_gw_url,
            gw_token=args.aci_gw_token,
            tenant_sync_interval=max(args.aci_tenant_sync_interval, 0.1),
            retry_max=max(args.aci_retry_max, 0.1),
        ),
    )
    app = create_app(store, settings)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    log.info("netmaster starting", extra={"listen": args.listen_url, "store": redact_url(settings.store_url)})
    try:
        # uvloop, as uvicorn.run would pick: its C transports and call_soon are most of the cost of
        # writing a thousand watch streams (uvicorn only installs it in its own run(), not for serve()).
        uvloop.run(_serve(server, sock, store))
    except KeyboardInterrupt:
        pass
    return 0 if server.started else 1


async def _serve(server: uvicorn.Server, sock: socket.socket, store: object) -> None:
    try:
        await server.serve(sockets=[sock])
    finally:
        await store.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
