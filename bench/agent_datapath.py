"""Agent datapath benchmark: policy flow counts, flows per endpoint, full resync time, state-to-flows latency.

    python bench/agent_datapath.py [--flows 10000] [--reference layout13] [--repeat 3]
                                   [--latency-iterations 50] [--skip-cluster]

Prints figures; asserts nothing about time (numbers belong in docs/performance.md, not in tests).
Flows per endpoint and the full resync are measured for this tree and for a reference commit
(``--reference``, exported with ``git archive`` to a temporary directory and imported from there),
alternately, and printed side by side with their ratio. Parts that need OVS run in a private network
namespace with a private userspace OVS (prefix ``ag``), removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The tree whose agent is measured: this one, or a reference export (set by the parent for its child).
TREE = Path(os.environ.get("AGENT_BENCH_TREE", str(REPO)))
sys.path.insert(0, str(TREE))

from agent.ovs.flow import Flow, Match, make_cookie  # noqa: E402
from agent.pipeline import build  # noqa: E402
from agent.pipeline.conjunction import MatchRule, compile_rules  # noqa: E402
from agent.pipeline.tables import ETH_IP, PRIO_RULE_BASE, PRIO_SKIP, Table  # noqa: E402
from agent.pipeline.view import DatapathView  # noqa: E402
from agent.state import DesiredState, Endpoint, EndpointGroup, Host, Network, Policy, Rule  # noqa: E402


def _ip(base: str, i: int) -> str:
    return f"{base}.{i // 250}.{i % 250 + 1}"


def epg_policy_counts() -> tuple[int, int, int]:
    """Two EPGs of 100 endpoints each (all on this host), 10 port rules from A into B."""
    net = Network("t", "n", "vxlan", "10.0.0.0/16", vni=100)
    eps = [Endpoint(f"a{i}", "t", "n", _ip("10.0", i), "h1", group="A") for i in range(100)]
    eps += [Endpoint(f"b{i}", "t", "n", _ip("10.0", 100 + i), "h1", group="B") for i in range(100)]
    rules = tuple(Rule(str(p), "in", "allow", 10, from_group="A", protocol="tcp", port=8000 + p)
                  for p in range(10))
    state = DesiredState(networks=(net,), endpoints=tuple(eps),
                         groups=(EndpointGroup("t", "A", 1, "n"), EndpointGroup("t", "B", 2, "n", ("p",))),
                         policies=(Policy("t", "p", rules),), hosts=(Host("h1", "192.0.2.1"),))
    view = DatapathView(state, "h1", {"t": 1}, {e.id: 16 + i for i, e in enumerate(eps)}, True, False)
    flows = build(view)
    policy = [f for f in flows if f.table in (Table.EGRESS_POLICY, Table.INGRESS_POLICY)
              and PRIO_RULE_BASE <= f.priority < PRIO_SKIP]  # rule flows, not the fixed bypass flows
    return len(policy), len(flows), 100 * 100 * 10


def address_set_counts() -> tuple[int, int]:
    """One rule from 100 source addresses to 100 destination addresses on 10 ports."""
    src = tuple(Match.of(eth_type=ETH_IP, ipv4_src=_ip("10.1", i)) for i in range(100))
    dst = tuple(Match.of(eth_type=ETH_IP, ipv4_dst=_ip("10.2", i)) for i in range(100))
    svc = tuple(Match.of(eth_type=ETH_IP, ip_proto=6, tcp_dst=8000 + p) for p in range(10))
    rule = MatchRule("bench", Table.INGRESS_POLICY, 10, True, src, dst, svc)
    flows = compile_rules([rule], Table.CT_COMMIT)
    return len(flows), 100 * 100 * 10


def resync_flows(target: int) -> list[Flow]:
    """A realistic pipeline of about *target* flows: remote endpoints in EPGs cost 4 flows each."""
    net = Network("t", "n", "vxlan", "10.0.0.0/8", vni=100)
    n = max(1, (target - 40) // 4)
    eps = tuple(Endpoint(f"e{i}", "t", "n", f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}", "h2",
                         group="g") for i in range(n))
    state = DesiredState(networks=(net,), endpoints=eps, groups=(EndpointGroup("t", "g", 7, "n"),),
                         hosts=(Host("h1", "192.0.2.1"), Host("h2", "192.0.2.2")))
    return build(DatapathView(state, "h1", {"t": 1}, {}, True, False))


# -- OVS part (runs inside a private namespace) ------------------------------------------------------

def _ofctl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], env=env, input=stdin, text=True,
                          capture_output=True, check=True).stdout


def _flow_count(env: dict[str, str], bridge: str) -> int:
    out = _ofctl(env, "dump-aggregate", bridge)
    return int(out.split("flow_count=")[1].split()[0])


def _cookie(round_: int, flow: Flow) -> int:
    """The flow's cookie in *round_* (with its rule id where the measured tree has one)."""
    return make_cookie(round_, flow.feature) | getattr(flow, "rule", 0)


def flows_per_endpoint() -> dict[str, float]:
    """Flows one more endpoint adds, local and remote, in an EPG with a policy (VXLAN and VLAN)."""
    out = {}
    for encap in ("vxlan", "vlan"):
        net = Network("t", "n", encap, "10.0.0.0/16", vni=100 if encap == "vxlan" else 0,
                      vlan=100 if encap == "vlan" else 0)

        def count(n_local: int, n_remote: int, net: Network = net) -> int:
            eps = [Endpoint(f"l{i}", "t", "n", _ip("10.0", i), "h1", group="g") for i in range(n_local)]
            eps += [Endpoint(f"r{i}", "t", "n", _ip("10.0", 500 + i), "h2", group="g") for i in range(n_remote)]
            state = DesiredState(networks=(net,), endpoints=tuple(eps), hosts=(Host("h1", "192.0.2.1"),
                                 Host("h2", "192.0.2.2")), groups=(EndpointGroup("t", "g", 1, "n", ("p",)),),
                                 policies=(Policy("t", "p", (Rule("1", "in", "deny", protocol="tcp"),)),))
            ports = {e.id: 16 + i for i, e in enumerate(eps) if e.host == "h1"}
            return len(build(DatapathView(state, "h1", {"t": 1}, ports, True, True)))

        out[f"{encap}: flows per local endpoint"] = (count(101, 100) - count(1, 100)) / 100
        out[f"{encap}: flows per remote endpoint"] = (count(100, 101) - count(100, 1)) / 100
    return out


def inner_resync(n_flows: int) -> dict[str, float]:
    from agent.ovs.encoder import FlowModEncoder
    from agent.ovs.ofcontroller import OpenFlowController
    from agent.ovs.ovsdb import Ovsdb
    from apic_mock.leaf.ovs import OvsInstance

    rundir = Path(tempfile.mkdtemp(prefix="agbench", dir="/tmp"))
    ovs = OvsInstance(rundir)
    ovs.start()
    try:
        env, br = ovs.env(), "benchbr"
        ctl = OpenFlowController(rundir / "openflow.sock")
        ctl.start()
        ctl.expect_datapath(1)
        Ovsdb(ovs.remote).ensure_bridge(br, "netdev", ctl.target, 1)
        assert ctl.wait_connected(10)
        flows = resync_flows(n_flows)

        t0 = time.monotonic()
        ctl.apply([(f, _cookie(1, f)) for f in flows])
        cold_install = time.monotonic() - t0
        assert _flow_count(env, br) == len(flows)

        # Restart-like resync: empty encoder cache, new round replaces every flow, old round deleted.
        ctl._encoder, ctl._encoded = FlowModEncoder(), {}
        t0 = time.monotonic()
        ctl.apply([(f, _cookie(2, f)) for f in flows], delete_rounds=[1])
        cold_resync = time.monotonic() - t0
        assert _flow_count(env, br) == len(flows)

        t0 = time.monotonic()
        ctl.apply([(f, _cookie(3, f)) for f in flows], delete_rounds=[2])
        warm_resync = time.monotonic() - t0
        assert _flow_count(env, br) == len(flows)

        text = "\n".join(f.ofctl() for f in flows) + "\n"
        _ofctl(env, "del-flows", br)
        t0 = time.monotonic()
        _ofctl(env, "--bundle", "add-flows", br, "-", stdin=text)
        ofctl_bundle = time.monotonic() - t0
        assert _flow_count(env, br) == len(flows)
        return {"resync flows": len(flows),
                "agent: install into empty bridge, cold encoder (s)": cold_install,
                "agent: full resync, new round + delete old, cold encoder (s)": cold_resync,
                "agent: full resync, new round + delete old, warm encoder (s)": warm_resync,
                "ovs-ofctl --bundle add-flows, same flows (s)": ofctl_bundle}
    finally:
        ovs.stop()
        shutil.rmtree(rundir, ignore_errors=True)


def measure_in_netns(tree: Path, n_flows: int) -> dict[str, float]:
    """Flows per endpoint and the resync figures of the agent in *tree*, in a child process."""
    ns = "ag" + secrets.token_hex(3) + "b"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, "--inner-resync",
                              "--flows", str(n_flows)], check=True, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(tree), "AGENT_BENCH_TREE": str(tree)}).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def export_reference(ref: str) -> Path:
    """The reference commit's tree in a temporary directory (git archive: no worktree, no checkout)."""
    dest = Path(tempfile.mkdtemp(prefix="agbench-ref-", dir="/tmp"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def compare(ref: str, n_flows: int, repeat: int) -> None:
    """Reference and this tree, alternately *repeat* times; medians side by side with the ratio."""
    ref_tree = export_reference(ref)
    try:
        runs: dict[str, list[dict[str, float]]] = {"ref": [], "new": []}
        for _ in range(repeat):
            runs["ref"].append(measure_in_netns(ref_tree, n_flows))
            runs["new"].append(measure_in_netns(REPO, n_flows))
    finally:
        shutil.rmtree(ref_tree, ignore_errors=True)
    print(f"\n{repeat} alternating runs per tree; median, then best (the least disturbed by other work)")
    print(f"{'figure':<62}{ref:>10}{'this tree':>11}{'ratio':>7}{ref:>10}{'this tree':>11}{'ratio':>7}")
    for key in runs["new"][0]:
        row = ""
        for pick in (statistics.median, min):
            old = pick(r[key] for r in runs["ref"])
            new = pick(r[key] for r in runs["new"])
            row += f"{old:10.3f}{new:11.3f}{new / old if old else float('nan'):7.2f}"
        print(f"{key:<62}{row}")


def state_to_flows_latency(iterations: int) -> list[float]:
    """Time from a new rule written to both hosts' state sources until both agents applied it."""
    from testbed.cluster import Cluster

    with Cluster(n_hosts=2) as cluster:
        hosts = tuple(Host(h.name, h.vtep_ip) for h in cluster.hosts)
        net = Network("t", "n", "vxlan", "10.0.0.0/24", vni=100)
        eps = tuple(Endpoint(f"e{i}", "t", "n", f"10.0.0.{i + 1}", f"h{i % 2 + 1}", group="g",
                             netns=cluster.container(f"e{i}")) for i in range(4))
        samples = []
        for i in range(iterations + 1):
            rules = (Rule("base", "in", "deny", protocol="tcp"),
                     Rule(f"r{i}", "in", "allow", 10, protocol="tcp", port=1000 + i))
            state = DesiredState(networks=(net,), endpoints=eps, hosts=hosts, revision=i + 1,
                                 groups=(EndpointGroup("t", "g", 9, "n", ("p",)),),
                                 policies=(Policy("t", "p", rules),))
            t0 = time.monotonic()
            cluster.apply(state)
            if i:  # the first round creates the endpoints
                samples.append(time.monotonic() - t0)
        return samples


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--flows", type=int, default=10000)
    p.add_argument("--latency-iterations", type=int, default=50)
    p.add_argument("--reference", default="layout13", help="git ref to compare with (default layout13)")
    p.add_argument("--repeat", type=int, default=3, help="alternating runs per tree (medians are printed)")
    p.add_argument("--skip-cluster", action="store_true")
    p.add_argument("--inner-resync", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner_resync:
        print(json.dumps({**flows_per_endpoint(), **inner_resync(args.flows)}))
        return 0

    policy, total, cross = epg_policy_counts()
    print(f"two EPGs x 100 endpoints, 10 port rules: {policy} policy flows "
          f"(cross product {cross}); whole pipeline for the 200 local endpoints: {total}")
    conj, cross = address_set_counts()
    print(f"100 sources x 100 destinations x 10 ports: {conj} flows (cross product {cross})")
    if os.geteuid() != 0 or shutil.which("ovs-vswitchd") is None:
        print("skipping OVS parts: needs root and Open vSwitch")
        return 0
    compare(args.reference, args.flows, args.repeat)
    if not args.skip_cluster:
        samples = state_to_flows_latency(args.latency_iterations)
        qs = statistics.quantiles(samples, n=100)
        print(f"rule change written -> flows applied on 2 hosts ({len(samples)} runs, file source, "
              f"no netmaster): p50 {statistics.median(samples) * 1000:.1f} ms, p99 {qs[98] * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
