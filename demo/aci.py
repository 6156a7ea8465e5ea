"""The ACI walkthrough: the workflow of issue 8, each step printed with what it shows.

1. an APIC (``apic_mock`` with its demo fabric), ``aci-gw``, netmaster on SQLite in ACI mode, two
   simulated hosts with agents and the simulated leaf 101 (``testbed.cluster.aci.AciCluster``);
2. an APIC administrator creates tenant ``acme`` over the APIC's REST API; netmaster imports it;
3. DevOps defines a network, EPGs ``web`` and ``db``, a policy on ``db`` and the app profile ``shop``
   with netctl; netmaster pushes the profile through aci-gw;
4. containers start on both hosts (the agents plumb their namespaces and tag them with the EPG's VLAN);
5. pings and TCP connections go through the leaf, allowed or blocked as the contracts say; a rule
   added with netctl opens exactly its port;
6. the APIC's objects (EPGs, contracts, filters) and what the fabric learnt (aci-gw ``/getEndpoint``);
7. teardown (also on Ctrl-C, SIGTERM or a failure) unless ``--keep``.

Every "blocked" is checked only after the APIC holds the change and the leaf programmed an APIC read
taken after it, so it means the fabric blocks it; the run exits 1 when any outcome differs.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from demo import keep
from demo.basic import BOLD, DIM, RESET, netctl
from testbed.aci_stack import AciApi
from testbed.cluster import leftovers
from testbed.cluster.aci import AciCluster
from testbed.netcheck import http_ok, http_server, ping
from testbed.sync_cluster import add_endpoint
from testbed.waiting import eventually

if TYPE_CHECKING:
    from apic_mock.leaf import SimLeaf
    from testbed.aci_gw import AciGwProcess
    from testbed.aci_stack import AciControlPlane
    from testbed.apic import ApicMock

TENANT = "acme"
SUBNET = "10.50.0"
GATEWAY = f"{SUBNET}.254"
PROFILE = "shop"
# container -> (host index, EPG)
CONTAINERS = {"web-1": (0, "web"), "web-2": (1, "web"), "db-1": (1, "db"), "batch-1": (0, "batch")}
APIC_TENANT = {
    "fvTenant": {
        "attributes": {"name": TENANT, "descr": "created by the APIC administrator"},
        "children": [
            {"fvCtx": {"attributes": {"name": "prod"}}},
            {"fvBD": {"attributes": {"name": "legacy"}, "children": [
                {"fvRsCtx": {"attributes": {"tnFvCtxName": "prod"}}},
                {"fvSubnet": {"attributes": {"ip": "10.60.0.1/24"}}},
            ]}},
        ],
    }
}
LISTED_CLASSES = ("fvAEPg", "fvBD", "fvSubnet", "vzBrCP", "vzSubj", "vzFilter", "vzEntry", "fvRsProv", "fvRsCons")


class Narrator:
    """Numbered steps with the time since the start, and the allowed/blocked verdicts it counts."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.done = 0
        self.started = time.monotonic()
        self.unexpected: list[str] = []

    def step(self, title: str) -> None:
        self.done += 1
        print(f"\n{BOLD}## [{self.done}/{self.steps}] {title}{RESET}  {DIM}(t+{self.elapsed():.0f}s){RESET}\n",
              flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        print(text, flush=True)

    def verdict(self, what: str, expected: bool, got: bool, why: str) -> None:
        word = "allowed" if got else "blocked"
        mark = "as expected" if got == expected else f"UNEXPECTED (should be {'allowed' if expected else 'blocked'})"
        print(f"  {what:<44} {word:<8} {mark}: {why}", flush=True)
        if got != expected:
            self.unexpected.append(what)


@dataclass(frozen=True)
class Parts:
    """The running stack's parts, once ``AciCluster.up`` returned."""

    control: AciControlPlane
    apic: ApicMock
    gw: AciGwProcess
    leaf: SimLeaf

    @classmethod
    def of(cls, cluster: AciCluster) -> Parts:
        control = cluster.control
        if control is None or control.apic is None or control.gw is None or cluster.leaf is None:
            raise RuntimeError("the ACI stack is not up")
        return cls(control, control.apic, control.gw, cluster.leaf)


@dataclass
class Walkthrough:
    cluster: AciCluster
    say: Narrator
    ns: dict[str, str] = field(default_factory=dict)
    eps: dict[str, dict[str, Any]] = field(default_factory=dict)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def parts(self) -> Parts:
        return Parts.of(self.cluster)

    @property
    def api(self) -> AciApi:
        return self.parts.control.api

    @property
    def url(self) -> str:
        return self.parts.control.netmaster_url

    def netctl(self, *commands: str) -> None:
        for command in commands:
            if netctl(self.url, command):
                raise RuntimeError(f"netctl {command} failed")

    def converged(self) -> None:
        """The APIC holds netmaster's intent and the leaf has programmed it."""
        self.api.wait_synced(f"{TENANT}:{PROFILE}")
        self.parts.leaf.wait_synced()

    def push_state(self) -> None:
        state = self.api.sync_state(f"{TENANT}:{PROFILE}")
        shown = {k: state[k] for k in ("state", "lastSync", "attempts", "reason") if k in state}
        if isinstance(shown.get("lastSync"), int | float):
            shown["lastSync"] = time.strftime("%H:%M:%S", time.localtime(shown["lastSync"]))
        self.say.say(f"push state (app-profile inspect, Oper.aciSync): {json.dumps(shown)}")

    # -- the steps ------------------------------------------------------------------------------

    def apic_admin_creates_tenant(self) -> None:
        self.say.step("An APIC administrator creates tenant 'acme' (a VRF and a bridge domain) in the APIC")
        apic = self.parts.apic
        self.say.say(f"{BOLD}$ POST {apic.url}/api/aaaLogin.json{RESET}   (user {apic.username})")
        self.say.say(f"{BOLD}$ POST {apic.url}/api/mo/uni.json{RESET}")
        self.say.say(json.dumps(APIC_TENANT, indent=1))
        with apic.client() as http:
            reply = http.post("/api/mo/uni.json", json=APIC_TENANT)
        reply.raise_for_status()
        self.say.say(f"-> {reply.status_code} {reply.text}")

    def netmaster_imports_it(self) -> None:
        self.say.step("netmaster (ACI mode) imports the tenant from the APIC through aci-gw's read API")

        def imported() -> bool:
            tenants = self.api.get("/api/v1/tenants/")
            return any(t["tenantName"] == TENANT and t.get("source") == "apic" for t in tenants)

        eventually(imported, timeout=20, what=f"tenant {TENANT} imported from the APIC")
        self.netctl("tenant ls", f"tenant inspect {TENANT}")

    def devops_defines_intent(self) -> None:
        self.say.step("DevOps defines the application: a VLAN network, EPGs web, db and batch, a policy on db")
        self.netctl(
            f"net create -t {TENANT} -e vlan -s {SUBNET}.0/24 -g {GATEWAY} app-net",
            f"group create -t {TENANT} app-net web",
            f"policy create -t {TENANT} db-policy",
            f"policy rule-add -t {TENANT} -d in -g web -l icmp db-policy 1",
            f"group create -t {TENANT} -p db-policy app-net db",
            f"group create -t {TENANT} app-net batch",
            f"group ls -t {TENANT}",
            f"policy rule-ls -t {TENANT} db-policy",
        )

    def profile_pushed(self) -> None:
        self.say.step("The app profile ties the EPGs together; netmaster pushes it to the APIC through aci-gw")
        self.netctl(f"app-profile create -t {TENANT} -g web,db,batch {PROFILE}")
        self.say.say("waiting for the push (inspect shows pending -> synced) and for the leaf to program it ...")
        self.converged()
        self.netctl(f"app-profile ls -t {TENANT}", f"app-profile inspect -t {TENANT} {PROFILE}")

    def containers_start(self) -> None:
        self.say.step("Containers start on both hosts: each agent plumbs the namespace and tags the EPG's VLAN")
        for name, (host_index, group) in CONTAINERS.items():
            host = self.cluster.hosts[host_index]
            self.ns[name] = self.cluster.container(name)
            req = {"endpoint_id": f"{TENANT}-{name}", "tenant": TENANT, "network": "app-net", "group": group,
                   "netns": self.ns[name]}
            status, body = add_endpoint(host, **req)
            if status != 200:
                raise RuntimeError(f"agent {host.name} refused {name}: {status} {body}")
            self.eps[name] = body
            self.say.say(f"  {name:<6} EPG {group:<4} on {host.name} (netns {self.ns[name]}): ip {body['ip']:<10} "
                         f"mac {body['mac']}  vlan {body['vlan']} on the uplink")
        workdir = self.cluster.root / "www"
        for port in (8000, 8001):
            self.servers.append(http_server(self.ns["db-1"], port, workdir))
            self.cluster.pids.append(self.servers[-1].pid)
        self.cluster._record()  # so `down` also stops the servers of a kept demo
        self.say.say("  db-1 serves HTTP on tcp 8000 and 8001 (busybox httpd)")

    def ip(self, name: str) -> str:
        return str(self.eps[name]["ip"])

    def expect_ping(self, src: str, dst: str, expected: bool, why: str, label: str = "") -> None:
        target = self.ip(dst) if dst in self.eps else dst
        self.expect(f"{src} -> {label or dst} ping", lambda: ping(self.ns[src], target, count=2), expected, why)

    def expect_tcp(self, src: str, dst: str, port: int, expected: bool, why: str) -> None:
        self.expect(f"{src} -> {dst} tcp {port}", lambda: http_ok(self.ns[src], self.ip(dst), port, timeout=1),
                    expected, why)

    def expect(self, what: str, probe: Callable[[], bool], expected: bool, why: str) -> None:
        """Allowed: retried for a few seconds (the leaf learns a new endpoint from its first frames);
        blocked: one try, the fabric being converged."""
        got = probe()
        deadline = time.monotonic() + 10
        while expected and not got and time.monotonic() < deadline:
            got = probe()
        self.say.verdict(what, expected, got, why)

    def traffic_as_the_contracts_say(self) -> None:
        self.say.step("Traffic through the leaf: only what the contracts allow")
        self.converged()
        self.expect_ping("web-1", "web-2", True, "same EPG (h1 -> leaf -> h2)")
        self.expect_ping("web-1", "db-1", True, "db-policy rule 1: icmp in from web")
        self.expect_ping("batch-1", "db-1", False, "rule 1 admits web only")
        self.expect_ping("batch-1", "web-1", False, "no contract between batch and web (both on h1)")
        self.expect_tcp("web-1", "db-1", 8000, False, "no rule for tcp 8000 yet")

    def rule_opens_its_port(self) -> None:
        self.say.step("A rule added with netctl opens exactly its port")
        self.netctl(f"policy rule-add -t {TENANT} -d in -g web -l tcp -P 8000 db-policy 2")
        self.say.say("waiting for the push and the leaf ...")
        self.converged()
        self.push_state()
        self.expect_tcp("web-1", "db-1", 8000, True, "db-policy rule 2: tcp 8000 in from web")
        self.expect_tcp("web-1", "db-1", 8001, False, "no rule for tcp 8001")
        self.expect_tcp("web-2", "db-1", 8000, True, "rule 2 covers every web container")
        self.expect_tcp("batch-1", "db-1", 8000, False, "rule 2 admits web only")

    def gateway(self) -> None:
        self.say.step("The bridge domain's gateway answers from the fabric (pervasive gateway)")
        for name in CONTAINERS:
            self.expect_ping(name, GATEWAY, True, "the leaf answers for the BD subnet's gateway", label=GATEWAY)

    def apic_objects(self) -> None:
        parts = self.parts
        control = parts.control
        self.say.step("What the APIC holds now, and what the fabric learnt")
        self.say.say(f"{BOLD}$ GET {parts.apic.url}/api/mo/uni/tn-{TENANT}.json?rsp-subtree=full{RESET}")
        tree = control.apic_tree(f"uni/tn-{TENANT}")
        listed = [(dn, cls, attrs) for dn, (cls, attrs) in tree.items() if cls in LISTED_CLASSES]
        for dn, cls, attrs in sorted(listed, key=lambda row: (LISTED_CLASSES.index(row[1]), row[0])):
            extra = ""
            if cls == "vzEntry":
                extra = f"  {attrs.get('etherT')}/{attrs.get('prot')} port {attrs.get('dFromPort')}"
            elif cls in ("fvRsProv", "fvRsCons"):
                extra = f"  contract {attrs.get('tnVzBrCPName')}"
            elif cls == "fvSubnet":
                extra = f"  {attrs.get('ip')}"
            self.say.say(f"  {cls:<9} {dn}{extra}")
        self.say.say(f"\n{BOLD}$ POST {parts.gw.url}/getEndpoint{RESET}   (Contiv's aci-gw API, per container)")
        for name, (_, group) in CONTAINERS.items():
            mac = self.eps[name]["mac"]

            def learnt(mac: str = mac, group: str = group) -> dict[str, Any] | None:
                reply = control.gw_endpoint(TENANT, PROFILE, group, mac)
                return reply if reply.get("result") == "success" else None

            body = {"tenant": TENANT, "app-prof": PROFILE, "epg": group, "epmac": mac}
            self.say.say(f"  {json.dumps(body)}")
            self.say.say(f"    -> {json.dumps(eventually(learnt, timeout=15, what=f'{name} learnt (fvCEp)'))}")

    def explore(self) -> dict[str, str]:
        """How to reach each part of a kept demo."""
        parts = self.parts
        apic = parts.apic
        h1, h2 = self.cluster.hosts[0].netns, self.cluster.hosts[1].netns
        return {
            "netctl": f"netctl --netmaster {self.url} app-profile inspect -t {TENANT} {PROFILE}",
            "APIC": f"curl --cacert {apic.ca_file} -d '{{\"aaaUser\":{{\"attributes\":{{\"name\":\"{apic.username}\","
                    f"\"pwd\":\"{apic.password}\"}}}}}}' -c /tmp/apic.cookie {apic.url}/api/aaaLogin.json; "
                    f"curl --cacert {apic.ca_file} -b /tmp/apic.cookie '{apic.url}/api/class/fvAEPg.json'",
            "aci-gw": f"curl -d '{{\"tenant\":\"{TENANT}\",\"app-prof\":\"{PROFILE}\",\"epg\":\"web\","
                      f"\"epmac\":\"{self.eps['web-1']['mac']}\"}}' {parts.gw.url}/getEndpoint",
            "containers": " ".join(f"{n}={ns}" for n, ns in self.ns.items())
                          + f"   e.g. ip netns exec {self.ns['web-1']} ping {self.ip('db-1')}",
            "hosts": f"h1={h1} h2={h2}   e.g. OVS_RUNDIR={self.cluster.hosts[0].ovs.rundir} "
                     f"ip netns exec {h1} ovs-ofctl -O OpenFlow13 dump-flows contivbr",
            "leaf": f"netns {parts.leaf.netns}; learnt endpoints and sync state in {parts.leaf.rundir}/status.json",
            "logs": str(self.cluster.root),
            "remove": "scripts/demo down",
        }


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(keep_running: bool = False) -> int:
    """The walkthrough; 0 when every outcome matched the contracts, 1 otherwise."""
    if keep.RECORD.exists():
        print(f"a kept demo is still running ({keep.RECORD}); remove it first with `scripts/demo down`")
        return 1
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (a `cmd &`)
    say = Narrator(steps=10 if keep_running else 11)
    cluster = AciCluster(n_hosts=2, leaf=True, apic_process=True)
    walk = Walkthrough(cluster, say)
    kept = False
    try:
        say.step("Starting the stack: apic_mock, aci-gw, netmaster (SQLite, ACI mode), 2 hosts with agents, "
                 "leaf 101")
        say.say(f"simulated cluster prefix {cluster.prefix} (namespaces and links named {cluster.prefix}*, "
                f"files in {cluster.root})")
        cluster.up()
        parts = Parts.of(cluster)
        control = parts.control
        say.say(f"  apic_mock  {parts.apic.url}  (demo fabric: leaves 101 and 102; physical domain "
                f"{control.phys_domain})")
        say.say(f"  aci-gw     {parts.gw.url}  (APIC_LEAF_NODE={control.leaf_node})")
        say.say(f"  netmaster  {control.netmaster_url}  (--infra aci, sqlite in {control.workdir})")
        for i, host in enumerate(cluster.hosts, start=1):
            say.say(f"  host {host.name}    netns {host.netns}, agent pid {host.agent.pid if host.agent else '-'}, "
                    f"trunk0 cabled to leaf port eth1/{i}")
        say.say(f"  leaf 101   netns {parts.leaf.netns}, programmed from the APIC's tree")
        walk.apic_admin_creates_tenant()
        walk.netmaster_imports_it()
        walk.devops_defines_intent()
        walk.profile_pushed()
        walk.containers_start()
        walk.traffic_as_the_contracts_say()
        walk.rule_opens_its_port()
        walk.gateway()
        walk.apic_objects()
        if say.unexpected:
            say.say(f"\n{BOLD}{len(say.unexpected)} outcome(s) differ from the contracts:{RESET} "
                    + ", ".join(say.unexpected))
        else:
            say.say(f"\n{BOLD}Every outcome matched the contracts.{RESET}  ({say.elapsed():.0f}s)")
        if keep_running:
            access = walk.explore()
            keep.save(cluster.prefix, parts.apic.workdir, access)
            kept = True
            say.say(f"\n{BOLD}The demo keeps running. How to reach each part:{RESET}")
            for part, how in access.items():
                say.say(f"  {part:<10} {how}")
        return 1 if say.unexpected else 0
    except (KeyboardInterrupt, SystemExit) as exc:
        say.say(f"\n{BOLD}Interrupted ({type(exc).__name__}); tearing down.{RESET}")
        return 130 if isinstance(exc, KeyboardInterrupt) else int(exc.code or 1)
    except Exception as exc:
        traceback.print_exc()
        say.say(f"\n{BOLD}The walkthrough failed: {exc}{RESET}  (logs in {cluster.root} until the teardown below)")
        return 1
    finally:
        if not kept:
            _teardown(walk, say)


def _teardown(walk: Walkthrough, say: Narrator) -> None:
    cluster = walk.cluster
    say.step("Teardown: containers, agents, leaf, netmaster, aci-gw, apic_mock")
    for server in walk.servers:
        server.kill()
        server.wait()
    apic_workdir = cluster.control.apic.workdir if cluster.control and cluster.control.apic else None
    pids = sorted(set(cluster.pids) | {h.agent.pid for h in cluster.hosts if h.agent})
    try:
        cluster.down()
    except BaseException:
        say.say(f"teardown interrupted; finish it with `python -m testbed.cluster down {cluster.prefix}`")
        raise
    if apic_workdir is not None:
        shutil.rmtree(apic_workdir, ignore_errors=True)
    left = leftovers(cluster.prefix)
    say.say(f"stopped processes {' '.join(map(str, pids)) or '-'}")
    say.say(f"left behind with prefix {cluster.prefix}: {', '.join(left) if left else 'nothing'}")
    sys.stdout.flush()
