"""Kubernetes' NetworkPolicy e2e truth tables, run against CRI pods on simulated hosts.

The cases are data (``tests/kubernetes/netpol_cases.yaml``: manifests + expected reachability, see
its header). :class:`NetpolLab` runs pods x/a..z/c through containerd's CRI on the hosts of a
:class:`~testbed.cri.cluster.CriCluster`, registers their labels and namespaces with netmaster (as a
Kubernetes adapter would), starts the probe servers in every pod, and for each case applies the
manifests through netmaster's API, waits for every agent to apply the revision, and probes every
pair with real connections (``testbed.netpol_probe``). A matrix that differs is probed again for up
to :data:`CONVERGE_SECONDS`; one right only on a later probe is reported as late (with what the first
probe saw), one still wrong as a failure with the pairs that differ and the hosts' policy flows; for
pairs that pass but should not, each host's flows, datapath flows, connection tracking and a trace of
the pair's packet go to a directory the failure names.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.pipeline.tables import Table
from testbed.cri.client import PodSpec
from testbed.cri.cluster import CriCluster, Pod
from testbed.netcheck import dump_hosts
from testbed.sync_cluster import Netmaster, wait_revision

REPO = Path(__file__).resolve().parent.parent
NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
PORTS = (80, 81)
# How long a matrix may take to be right after every agent reported the change applied: OVS's
# cached datapath flows are revalidated after the OpenFlow change, which a loaded machine delays.
CONVERGE_SECONDS = 10.0
_IP_REF = re.compile(r"\{ip:([a-z]/[a-z])\}")


@dataclass
class CaseResult:
    name: str
    probes: int = 0
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # matrices right only on a later probe

    @property
    def ok(self) -> bool:
        return self.passed == self.probes and not self.failures


def expected_matrix(pods: list[str], ops: list[list[Any]]) -> dict[tuple[str, str], bool]:
    """Every ordered pair of distinct pods -> reachable, after applying *ops* ([from, to, bool],
    shell patterns over "ns/pod") to an all-reachable matrix."""
    matrix = {(a, b): True for a in pods for b in pods if a != b}
    for src, dst, allow in ops:
        for a, b in matrix:
            if fnmatch.fnmatchcase(a, src) and fnmatch.fnmatchcase(b, dst):
                matrix[(a, b)] = bool(allow)
    return matrix


def load_cases(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())


class NetpolLab:
    def __init__(self, cluster: CriCluster, nm: Netmaster, tenant: str) -> None:
        self.cluster, self.nm, self.tenant = cluster, nm, tenant
        self.pods: dict[str, Pod] = {}
        self.servers: list[subprocess.Popen[bytes]] = []

    # -- set-up -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Namespaces and pods (spread over the hosts, so pairs cross hosts and stay on one), their
        labels in netmaster, and the probe servers."""
        hosts = self.cluster.hosts
        for i, (ns, name) in enumerate((ns, n) for ns in NAMESPACES for n in POD_NAMES):
            pod = self.cluster.run_pod(hosts[i % len(hosts)], PodSpec(name, ns, labels={"pod": name}))
            self.pods[f"{ns}/{name}"] = pod
            self.servers.append(subprocess.Popen(
                ["nsenter", f"--net={pod.netns}", sys.executable, "-m", "testbed.netpol_probe", "serve",
                 *map(str, PORTS)], cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"},
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        for proc in self.servers:
            assert proc.stdout is not None
            proc.stdout.readline()  # "serving"
        self.reset()
        self.warm_up()

    def warm_up(self, timeout: float = 60.0) -> None:
        """Every pair reachable without policy before the first case: the first packets toward a new
        VXLAN peer may be lost while the underlay resolves, which is not what the tables test."""
        deadline = time.monotonic() + timeout
        while True:
            down = sorted(pair for proto in ("TCP", "UDP") for pair, ok in self.observe(proto, PORTS[0]).items()
                          if not ok)
            if not down:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"pods cannot reach each other without any policy: {down[:10]}")
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait(10)

    def post(self, manifest: dict[str, Any]) -> int:
        resp = self.nm.http.post("/api/v1/kubernetes/", params={"tenant": self.tenant}, json=manifest)
        self.nm.ok(resp)
        return int(resp.headers["X-Revision"])

    def delete_policy(self, key: str) -> int:
        resp = self.nm.http.delete(f"/api/v1/kubernetes/networkpolicies/{key}/")
        self.nm.ok(resp)
        return int(resp.headers["X-Revision"])

    def reset(self) -> None:
        """No NetworkPolicy; namespaces and pods with their base labels."""
        revision = 0
        for item in self.nm.ok(self.nm.http.get("/api/v1/kubernetes/networkpolicies/")):
            revision = max(revision, self.delete_policy(item["key"]))
        for ns in NAMESPACES:
            revision = max(revision, self.post({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        for key in self.pods:
            ns, name = key.split("/")
            revision = max(revision, self.post({"apiVersion": "v1", "kind": "Pod",
                                                "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}}}))
        wait_revision(self.cluster, revision, timeout=30)

    # -- cases --------------------------------------------------------------------------------------

    def _resolve(self, manifest: dict[str, Any]) -> dict[str, Any]:
        text = _IP_REF.sub(lambda m: self.pods[m.group(1)].ip, json.dumps(manifest))
        return json.loads(text)

    def observe(self, protocol: str, port: int) -> dict[tuple[str, str], bool]:
        names = sorted(self.pods)

        def from_pod(src: str) -> dict[tuple[str, str], bool]:
            targets = {self.pods[d].ip: d for d in names if d != src}
            proc = self.pods[src].run(sys.executable, "-m", "testbed.netpol_probe", "probe", protocol.lower(),
                                      str(port), *targets, timeout=60, cwd=REPO, env={"PYTHONPATH": str(REPO)})
            seen = json.loads(proc.stdout) if proc.returncode == 0 else {}
            return {(src, d): bool(seen.get(ip)) for ip, d in targets.items()}

        out: dict[tuple[str, str], bool] = {}
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            for part in pool.map(from_pod, names):
                out.update(part)
        return out

    def check(self, protocol: str, port: int, ops: list[list[Any]], result: CaseResult,
              within: float = CONVERGE_SECONDS) -> None:
        """Probe until the matrix is as expected or *within* seconds have passed since the agents
        applied the change; a matrix right only on a later probe is counted in ``result.late`` with
        what the earlier probes saw (the datapath lagged the agents), a wrong one in ``failures``."""
        want = expected_matrix(sorted(self.pods), ops)
        deadline = time.monotonic() + within
        seen: list[str] = []
        while True:
            got = self.observe(protocol, port)
            wrong = [f"{a}->{b} {protocol}/{port}: expected {'allowed' if v else 'denied'}"
                     for (a, b), v in sorted(want.items()) if got[(a, b)] != v]
            if not wrong:
                result.passed += 1
                if seen:
                    result.late.append(f"{protocol}/{port} right after {len(seen)} wrong probe(s): {seen[0]}")
                return
            seen.append("; ".join(wrong))
            if time.monotonic() > deadline:
                leaks = [pair for pair, v in sorted(want.items()) if got[pair] and not v]
                result.failures += wrong + self.policy_flows() + self.dump_leaks(leaks, protocol, port, result.name)
                return
            time.sleep(1.0)

    def policy_flows(self) -> list[str]:
        """What the hosts enforce (their policy tables), and the pods' addresses: for a failure report."""
        tables = {f"table={int(Table.INGRESS_POLICY)},", f"table={int(Table.EGRESS_POLICY)},"}
        out = [f"pods: {' '.join(f'{k}={p.ip}@{p.host.name}' for k, p in sorted(self.pods.items()))}"]
        for host in self.cluster.hosts:
            out += [f"{host.name}: {f}" for f in host.flows() if any(t in f for t in tables)]
            # the switch's side: cached datapath flows after conntrack, and tracked connections
            datapath = host.ovs.run("ovs-appctl", "dpctl/dump-flows").splitlines()
            out += [f"{host.name} dp: {f}" for f in datapath if "ct_state" in f][:60]
            conns = host.ovs.run("ovs-appctl", "dpctl/dump-conntrack").splitlines()
            out += [f"{host.name} ct: {c}" for c in conns if "ESTABLISHED" in c][:40]
        return out

    def dump_leaks(self, leaks: list[tuple[str, str]], protocol: str, port: int, case: str) -> list[str]:
        """For pairs that pass but should not: each target host's whole flow table, datapath flows,
        connection tracking and a trace of the pair's first packet, written to a directory (too long
        for the report, which names it)."""
        if not leaks:
            return []
        out_dir = dump_hosts(self.cluster.hosts, "netpol-leak")
        traces = []
        records = self.nm.ok(self.nm.http.get("/api/v1/endpoints/"))
        macs = {ep["containerID"]: ep["macAddress"] for ep in records}
        for src, dst in leaks:
            a, b = self.pods[src], self.pods[dst]
            proto = protocol.lower()
            packet = (f"{proto},dl_src={macs.get(a.id)},dl_dst={macs.get(b.id)},nw_src={a.ip},nw_dst={b.ip},"
                      f"{proto}_src=40000,{proto}_dst={port}")
            traces.append(f"== {src} -> {dst} on {b.host.name}: {packet}")
            if a.host is b.host:
                continue  # traced from the tunnel only (a local pod's ofport is not known here)
            found = (re.search(r"tun_id=(0x[0-9a-f]+)", f) for f in b.host.flows())
            for vni in sorted({m.group(1) for m in found if m}):
                traces.append(b.host.ovs.run("ovs-appctl", "ofproto/trace", b.host.bridge,
                                             f"in_port=1,tun_id={vni},{packet}", check=False))
        (out_dir / "traces.txt").write_text("\n".join(traces))
        (out_dir / "case.txt").write_text(f"{case}\n{leaks}\n" + " ".join(
            f"{k}={p.ip}@{p.host.name}" for k, p in sorted(self.pods.items())))
        return [f"leak diagnostics in {out_dir}"]

    def run_case(self, case: dict[str, Any]) -> CaseResult:
        result = CaseResult(case["name"])
        self.reset()
        for step in case["steps"]:
            revision = 0
            for manifest in step.get("apply", ()):
                revision = max(revision, self.post(self._resolve(manifest)))
            for manifest in step.get("delete", ()):
                meta = manifest["metadata"]
                revision = max(revision, self.delete_policy(
                    f"{self.tenant}:{meta.get('namespace', 'default')}:{meta['name']}"))
            wait_revision(self.cluster, revision, timeout=30)
            for probe in step["probes"]:
                result.probes += 1
                self.check(probe["protocol"], probe["port"], probe["expect"], result)
        return result
