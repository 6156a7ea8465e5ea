"""``netplugin``: the host agent daemon.

Start-up order matters for restart safety: the controller listens first, then the bridge is
converged (secure fail mode, so flows stay while nobody is connected), then the first full sync
installs a new cookie round and removes the old one.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import AgentConfig
from agent.host_access import plan as host_access_plan
from agent.pipeline import build, counts_by_stage, stage_of
from agent.pipeline.tables import FIRST_ENDPOINT_OFPORT, MAX_UPLINKS, UPLINK_OFPORT, Table
from agent.pipeline.view import DatapathView
from agent.state import DesiredState

if TYPE_CHECKING:
    from agent.bgp.speaker import BgpSpeaker
    from agent.dns.service import DnsService
    from agent.endpoint_ops import EndpointOps
    from agent.netmaster_source import NetmasterStateSource
    from agent.ovs.ovsdb import Ovsdb
    from agent.reconciler import Reconciler

LOG = logging.getLogger("netplugin")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="netplugin", description="Contiv host agent (Open vSwitch)")
    p.add_argument("--host-label", required=True, help="this host's name, as endpoints' host field")
    p.add_argument("--ovsdb", default="unix:/var/run/openvswitch/db.sock", help="OVSDB remote")
    p.add_argument("--bridge", default="contivbr")
    p.add_argument("--datapath-type", default="netdev", choices=["netdev", "system"])
    p.add_argument("--of-socket", default="",
                   help="unix socket the bridge connects to as its OpenFlow controller, root-only; it must be in "
                        "OVS's run directory, where ovs-vswitchd accepts unix controllers (default "
                        "contiv-<bridge>.sock next to a unix: --ovsdb socket, else in /var/run/openvswitch)")
    p.add_argument("--vtep-ip", default="", help="VXLAN tunnel source address (data network)")
    p.add_argument("--vlan-uplinks", default="",
                   help="comma-separated trunk interfaces; several form an active-backup OVS bond")
    p.add_argument("--bond-name", default="uplink-bond", help="name of the OVS bond port of several uplinks")
    p.add_argument("--bond-lacp", default="off", choices=["off", "active", "passive"],
                   help="LACP on the uplink bond (off suits a plain switch; active/passive need a LAG there)")
    p.add_argument("--underlay-mtu", type=int, default=1500)
    p.add_argument("--state-file", type=Path, help="desired state JSON (standalone host, tests)")
    p.add_argument("--netmaster", default="",
                   help="netmaster URL(s), comma-separated: follow its state (list+watch) and create endpoints there")
    p.add_argument("--netmaster-token", default=os.environ.get("CONTIV_NETMASTER_TOKEN"),
                   help="bearer token for netmaster (prefer the CONTIV_NETMASTER_TOKEN environment variable)")
    p.add_argument("--netmaster-wait", type=float, default=5.0,
                   help="seconds an endpoint add/delete waits for an unreachable netmaster before failing")
    p.add_argument("--ctrl-ip", default="",
                   help="this host's control address: netmaster connections leave from it and it is announced "
                        "in the agent record (must be an address of this host)")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/contiv/agent"),
                   help="local endpoint records and the last applied state (with --netmaster)")
    p.add_argument("--agent-ttl", type=int, default=15,
                   help="seconds netmaster keeps this agent's record after its last heartbeat")
    p.add_argument("--cni-socket", default="/run/contiv/contiv-cni.sock",
                   help="unix socket the contiv CNI plugin talks to (with --netmaster; '' turns CNI off)")
    p.add_argument("--docker-plugin", default="",
                   help="serve the Docker network and IPAM driver on this socket path, or under this name in "
                        "/run/docker/plugins (with --netmaster; default off)")
    p.add_argument("--docker-socket", default="",
                   help="dockerd's API socket (e.g. /var/run/docker.sock): with --docker-plugin, follow dockerd's "
                        "events and give each container's endpoints its labels (docker run --label), which "
                        "services select providers by (default off)")
    p.add_argument("--docker-scope", default="global", choices=["global", "local"],
                   help="Scope the Docker driver reports; a dockerd outside swarm mode only accepts 'local' "
                        "(connectivity scope stays global either way)")
    p.add_argument("--verify-interval", type=float, default=10.0,
                   help="seconds between checks that the switch still holds the agent's flows (0: off)")
    p.add_argument("--garp-interval", type=float, default=300.0,
                   help="ACI mode: seconds between gratuitous ARPs re-announcing every local endpoint to the "
                        "fabric (besides those on endpoint add and after an app-profile push; 0: off)")
    p.add_argument("--bgp-api", default="127.0.0.1:50051",
                   help="L3 mode: gRPC address of this host's gobgpd (started here if nothing answers; it "
                        "outlives the agent so a restart does not drop the BGP sessions)")
    p.add_argument("--gobgpd", default="gobgpd", help="L3 mode: the gobgpd binary")
    p.add_argument("--inspect", default="", help="inspect API address: unix:/path or 127.0.0.1:PORT")
    p.add_argument("--inspect-listen", default="", metavar="HOST:PORT",
                   help="also serve the read-only inspect API on TCP for netmaster to proxy (default off; host "
                        "127.0.0.1 unless given; 0.0.0.0 publishes --ctrl-ip); the URL goes in the agent record")
    p.add_argument("--dns", action="store_true",
                   help="service discovery: answer containers' DNS (port 53, redirected by flows) with the names of "
                        "their tenant (services, containers, groups; docs/services.md), others forwarded")
    p.add_argument("--dns-zone", default="contiv", help="the zone of --dns names: NAME.TENANT.ZONE")
    p.add_argument("--dns-upstream", default="", metavar="IP[:PORT],...",
                   help="resolvers for names outside the zone (default: the nameservers of /etc/resolv.conf)")
    p.add_argument("--dump-pipeline", action="store_true",
                   help="print the pipeline's tables and flow counts by stage for --state-file and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="with --dump-pipeline: print the flows")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def dump_pipeline(args: argparse.Namespace) -> int:
    """Offline view of what the agent would program for the state file (local endpoints are given
    consecutive ofports, as a fresh agent would)."""
    state = DesiredState.load(args.state_file)
    local = [ep for ep in state.endpoints if ep.host == args.host_label]
    ofports = {ep.id: FIRST_ENDPOINT_OFPORT + i for i, ep in enumerate(sorted(local, key=lambda e: e.id))}
    vrfs = {t: i for i, t in enumerate(state.tenants, start=1)}
    uplinks = [x for x in args.vlan_uplinks.split(",") if x]
    view = DatapathView(state, args.host_label, vrfs, ofports, bool(args.vtep_ip), bool(uplinks),
                        tuple(UPLINK_OFPORT + i for i in range(max(1, len(uplinks)))),
                        host_networks=host_access_plan(state).networks)
    flows = build(view)
    print(f"{'stage':<18}{'table':<16}{'id':>4}{'flows':>7}")
    for stage, tables in counts_by_stage(flows).items():
        for table, count in tables.items():
            print(f"{stage:<18}{table:<16}{int(Table[table]):>4}{count:>7}")
            if args.verbose:
                for f in sorted(flows, key=lambda f: -f.priority):
                    if f.table == int(Table[table]) and stage_of(f.table) == stage:
                        print("    " + f.ofctl())
    print(f"{'total':<38}{len(flows):>7}")
    return 0


def _watch_switch(reconciler: Reconciler, verify_interval: float, garp_interval: float) -> None:
    """Background checks: a switch waiting for a flow restore, and drift of the installed flows; in
    ACI mode also the periodic re-announcement of local endpoints."""
    last_verify = last_garp = time.monotonic()
    while True:
        # A restarted ovs-vswitchd forwards nothing until the agent has cleared flow-restore-wait and
        # replayed the pipeline, so the check runs often (it reads OVSDB's in-memory copy only).
        time.sleep(0.1)
        try:
            reconciler.check_switch()
            reconciler.uplink_info()  # link-state metrics and failover logging
            if verify_interval > 0 and time.monotonic() - last_verify >= verify_interval:
                last_verify = time.monotonic()
                reconciler.verify()
            if garp_interval > 0 and time.monotonic() - last_garp >= garp_interval:
                last_garp = time.monotonic()
                reconciler.announce_all()
            else:
                reconciler.announce_due()
        except Exception:
            LOG.exception("switch check failed")


def netmaster_source(args: argparse.Namespace, reconciler: Reconciler,
                     inspect_url: str = "") -> tuple[NetmasterStateSource, EndpointOps]:
    """The netmaster state source and the EndpointOps the front ends (CNI, Docker) are given."""
    from agent.endpoint_ops import EndpointOps
    from agent.local_endpoints import LocalEndpointStore
    from agent.netmaster_source import AgentIdentity, NetmasterStateSource
    from agent.pending_releases import PendingReleases
    from agent.reclaim import Reclaimer
    from contiv_api import __version__  # one project, one version

    args.state_dir.mkdir(parents=True, exist_ok=True)
    local = LocalEndpointStore(args.state_dir / "endpoints")
    identity = AgentIdentity(args.host_label, args.vtep_ip, args.ctrl_ip, __version__, args.agent_ttl, inspect_url)
    source = NetmasterStateSource([u for u in args.netmaster.split(",") if u], identity, local,
                                  token=args.netmaster_token, request_wait=args.netmaster_wait,
                                  cache_file=args.state_dir / "last-state.json", metrics=reconciler.metrics)
    LOG.info("following netmaster %s (retrying until it answers)", args.netmaster)
    source.start()
    reconciler.info_sources["netmaster"] = source.partition_info
    ops = EndpointOps(source, reconciler, local, PendingReleases(args.state_dir / "releases"))
    Reclaimer(ops).start()
    return source, ops


def _dns_service(args: argparse.Namespace, ovsdb: Ovsdb, bridge: str) -> DnsService:
    from agent.dns.port import DnsPort
    from agent.dns.responder import DnsResponder, resolvers
    from agent.dns.service import DnsService

    upstreams = [(h, int(p or 53)) for h, _, p in (u.partition(":") for u in args.dns_upstream.split(",") if u)]
    return DnsService(DnsPort(ovsdb, bridge), DnsResponder(upstreams or resolvers(), args.dns_zone), args.dns_zone)


def bgp_speaker(args: argparse.Namespace, reconciler: Reconciler) -> BgpSpeaker:
    """L3 mode: the host's BGP speaker, fed by every program and feeding learned routes back. A
    gobgpd left running by an earlier agent is adopted now, so the first full sync has its routes."""
    from agent.bgp.gobgpd import Gobgpd
    from agent.bgp.speaker import BgpSpeaker
    from agent.pipeline import bgp_routes

    daemon = Gobgpd(args.bgp_api, args.state_dir, args.gobgpd)
    speaker = BgpSpeaker(daemon, reconciler.metrics)
    if daemon.pidfile.exists():
        reconciler.learned_routes = speaker.prime()
    speaker.on_routes.append(reconciler.set_learned_routes)
    reconciler.after_program.append(
        lambda view: speaker.desire(view.state.bgp if view.bgp is not None else None, bgp_routes.prefixes(view)))
    reconciler.bgp_inspect = speaker.info
    reconciler.on_endpoint_allocated.append(speaker.expect)
    reconciler.on_endpoint_abandoned.append(speaker.forget)
    reconciler.on_endpoint_leaving.append(speaker.retract)
    reconciler.before_router_port_removal.append(speaker.shutdown)
    return speaker


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install-cni"]:
        from agent.cni.install import main as install_cni

        return install_cni(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # imported by python-ovs
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per heartbeat and watch otherwise
    if args.dump_pipeline:
        if not args.state_file:
            print("--dump-pipeline needs --state-file", file=sys.stderr)
            return 2
        return dump_pipeline(args)
    uplinks = tuple(x for x in args.vlan_uplinks.split(",") if x)
    if len(uplinks) > MAX_UPLINKS or len(set(uplinks)) != len(uplinks):
        LOG.error("--vlan-uplinks: at most %d distinct interfaces, got %s", MAX_UPLINKS, args.vlan_uplinks)
        return 2
    if bool(args.netmaster) == bool(args.state_file):
        LOG.error("exactly one state source is required: --netmaster URL or --state-file PATH")
        return 2
    if args.docker_socket and not (args.docker_plugin and args.netmaster):
        LOG.error("--docker-socket needs --docker-plugin and --netmaster (it labels the driver's endpoints)")
        return 2
    try:
        if args.ctrl_ip:
            from agent.ctrl_ip import check_ctrl_ip

            args.ctrl_ip = check_ctrl_ip(args.ctrl_ip)
        listen = None
        if args.inspect_listen:
            from agent.inspect_api import parse_listen

            listen = parse_listen(args.inspect_listen)
            if listen[0] in ("0.0.0.0", "") and not args.ctrl_ip:
                raise ValueError("--inspect-listen on 0.0.0.0 needs --ctrl-ip: the address netmaster should use")
    except ValueError as exc:
        LOG.error("%s", exc)
        return 2

    from agent.inspect_api import serve
    from agent.ovs.ofcontroller import OpenFlowController
    from agent.ovs.ovsdb import Ovsdb
    from agent.reconciler import Reconciler
    from agent.state_source import FileStateSource, StateSource

    cfg = AgentConfig(host_label=args.host_label, ovsdb=args.ovsdb, bridge=args.bridge,
                      datapath_type=args.datapath_type, of_socket=args.of_socket, vtep_ip=args.vtep_ip,
                      vlan_uplinks=uplinks, underlay_mtu=args.underlay_mtu, bond_name=args.bond_name,
                      bond_lacp=args.bond_lacp)
    of = OpenFlowController(cfg.controller_socket)
    try:
        of.start()
    except OSError as exc:
        LOG.error("cannot listen for the bridge's OpenFlow connection on %s: %s", of.target, exc)
        return 2
    ovsdb = None
    while ovsdb is None:
        try:
            ovsdb = Ovsdb(cfg.ovsdb)
        except Exception as exc:
            LOG.error("OVS not reachable at %s (%s); retrying in 1 s", cfg.ovsdb, exc)
            time.sleep(1)
    reconciler = Reconciler(cfg, ovsdb, of, dns=_dns_service(args, ovsdb, cfg.bridge) if args.dns else None)
    inspect_url = ""
    if listen is not None:
        from agent.inspect_api import published_url, serve_tcp

        try:
            tcp = serve_tcp(reconciler, listen[0], listen[1], args.netmaster_token)
        except OSError as exc:
            LOG.error("--inspect-listen %s: %s", args.inspect_listen, exc)
            return 2
        inspect_url = published_url(tcp, args.ctrl_ip)
        LOG.info("inspect API for netmaster on %s", inspect_url)
    speaker = bgp_speaker(args, reconciler)
    source: StateSource
    ops = None
    if args.netmaster:
        followed, ops = netmaster_source(args, reconciler, inspect_url)
        followed.bgp_neighbors = speaker.neighbor_states  # in the agent record (netctl bgp inspect's fallback)
        source = followed
    else:
        source = FileStateSource(args.state_file)
    reconciler.on_resync_needed.append(source.poke)
    reconciler.start()
    if not of.wait_connected(30):
        LOG.error("bridge %s did not connect to the controller at %s", cfg.bridge, of.target)
        return 1
    if args.inspect:
        serve(reconciler, args.inspect, ops)
    if ops is not None:
        from agent.frontends import start_frontends

        ops.resume()
        start_frontends(ops, args.cni_socket, args.docker_plugin, args.state_dir, args.docker_scope,
                        args.docker_socket)
    signal.signal(signal.SIGTERM, lambda *_: source.stop())
    threading.Thread(target=_watch_switch, args=(reconciler, args.verify_interval, args.garp_interval),
                     name="switch-watch", daemon=True).start()
    LOG.info("agent %s running: bridge %s, state from %s", cfg.host_label, cfg.bridge,
             args.netmaster or args.state_file)
    gc.freeze()  # startup's objects leave the collector's scans: shorter pauses of every thread (DNS answers too)
    source.run(reconciler.reconcile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
