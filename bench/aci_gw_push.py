"""Benchmark: push an app profile of 50 EPGs and 50 contracts through aci-gw, side by side with a
baseline client that creates the same objects one request per object, as typical automation does;
then the scale round: 1,000 EPGs and 1,000 contracts across 20 tenants (first push, unchanged
re-push, one-EPG change, drift repair of one object deleted in the APIC).

Both run against apic_mock over HTTPS on this machine. The gateway runs as its real command (``aci-gw``
in a subprocess) and is driven through its Contiv API; the baseline logs in once and POSTs every MO
of the same desired tree to its parent, parent first. APIC requests are counted by the mock (logins
excluded). A second round adds a fixed latency to every APIC request, to show what a real APIC's
per-request cost does to each approach.

The scale round runs with the latency on (unless ``--latency-ms 0``). The 20 pushes are sent at once,
as netmaster's reconciler sends one per app profile; requests the drift watch makes (subscriptions,
refreshes) are counted apart from the pushes'. A drift repair is timed from the APIC's answer to the
user's DELETE to the APIC's answer to the gateway's repairing POST (read from the mock's request log).

    python bench/aci_gw_push.py [--epgs 50] [--contracts 50] [--latency-ms 10] [--tenants 20]
                                [--scale-epgs 1000] [--scale-contracts 1000] [--repairs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aci_gw.config import FabricSettings  # noqa: E402
from aci_gw.mo import Mo  # noqa: E402
from aci_gw.translate import ApicFacts, translate  # noqa: E402
from contiv_api.aci_gw_payload import parse_app_profile  # noqa: E402
from testbed.aci_gw_payloads import PHYS_DOMAIN, big_profile  # noqa: E402
from testbed.apic import ApicMock, flatten_subtree  # noqa: E402


def _is_watch(entry: dict[str, Any]) -> bool:
    return entry["path"].startswith("/api/subscriptionRefresh") or "subscription=yes" in entry["query"]


def apic_requests(apic: ApicMock) -> int:
    """Requests to the APIC API since the last reset, logins, refreshes and the drift watch's excluded."""
    log = apic.admin.stats()["log"]
    return sum(1 for e in log if not e["path"].startswith("/api/aaa") and not _is_watch(e))


def watch_requests(apic: ApicMock) -> int:
    return sum(1 for e in apic.admin.stats()["log"] if _is_watch(e))


def flatten(mo: Mo, parent_dn: str) -> Iterator[tuple[str, Mo]]:
    """(parent DN, MO without children) for every object of the tree, parents first."""
    yield parent_dn, Mo(mo.cls, dict(mo.attrs))
    dn = f"{parent_dn}/{mo.rn}"
    for child in mo.children:
        yield from flatten(child, dn)


def baseline_push(apic: ApicMock, body: dict[str, Any]) -> tuple[float, int]:
    """One POST per object, the way ansible-style automation configures an APIC."""
    req = parse_app_profile(body)
    fabric = FabricSettings(physical_domain=PHYS_DOMAIN, node_bindings=("topology/pod-1/node-101",))
    tree = translate(req, fabric, ApicFacts(None))
    objects = list(flatten(tree, "uni"))
    with httpx.Client(base_url=apic.url, verify=apic.ssl_context(), timeout=60) as client:
        login = {"aaaUser": {"attributes": {"name": apic.username, "pwd": apic.password}}}
        client.post("/api/aaaLogin.json", json=login).raise_for_status()
        apic.admin.reset_stats()
        started = time.perf_counter()
        for parent_dn, mo in objects:
            client.post(f"/api/mo/{parent_dn}.json", json=mo.to_json()).raise_for_status()
        elapsed = time.perf_counter() - started
    return elapsed, apic_requests(apic)


class GatewayProcess:
    """``aci-gw`` as deployed: its own process, configured by environment."""

    def __init__(self, apic: ApicMock) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "APIC_URL": apic.url, "APIC_USERNAME": apic.username,
               "APIC_PASSWORD": apic.password, "APIC_CA_BUNDLE": apic.ca_file or "", "APIC_SDK": "rest",
               "APIC_PHYS_DOMAIN": PHYS_DOMAIN, "APIC_LEAF_NODE": "topology/pod-1/node-101",
               "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "aci_gw.cli", "--listen-url", f"127.0.0.1:{port}"]
        self.proc = subprocess.Popen(command, env=env)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:  # also logs in to the APIC
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("aci-gw did not start")
            time.sleep(0.1)

    def push(self, apic: ApicMock, body: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
        apic.admin.reset_stats()
        started = time.perf_counter()
        result = self.send(body)
        elapsed = time.perf_counter() - started
        return elapsed, apic_requests(apic), result

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        result = self.http.post("/createAppProf", json=body).json()
        if result["result"] != "success":
            raise RuntimeError(f"push failed: {result}")
        return result

    def push_all(self, apic: ApicMock, bodies: list[dict[str, Any]]) -> tuple[float, int, int]:
        """All pushes at once; (wall time, APIC requests, objects written)."""
        apic.admin.reset_stats()
        started = time.perf_counter()
        with ThreadPoolExecutor(len(bodies)) as pool:
            results = list(pool.map(self.send, bodies))
        elapsed = time.perf_counter() - started
        return elapsed, apic_requests(apic), sum(r["changes"] for r in results)

    def wait_watched(self, tenants: set[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not tenants <= set(self.http.get("/api/v1/drift").json()["watchedTenants"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the drift watch did not subscribe every tenant")
            time.sleep(0.05)

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(10)


def changed(body: dict[str, Any], n: int) -> dict[str, Any]:
    """The same profile with ``n`` EPGs moved to new VLANs and ``n`` contracts given a new port."""
    body = json.loads(json.dumps(body))
    for epg in body["epgs"][:n]:
        epg["vlan-tag"] = str(int(epg["vlan-tag"]) + 1000)
    for cdef in body["contract-defs"][:n]:
        cdef["filter-info"].append({"protocol": "tcp", "servport": "7777"})
    return body


def run_round(
    apic: ApicMock, gw: GatewayProcess, args: argparse.Namespace, label: str, tag: str
) -> list[str]:
    """Gateway operations repeated ``args.repeat`` times on fresh tenants (median reported); the
    baseline once (it is the slow side)."""
    runs: dict[str, list[tuple[float, int, int]]] = {"push": [], "again": [], "change": []}
    for i in range(args.repeat):
        body = big_profile(args.epgs, args.contracts, tenant=f"gw-{tag}-{i}")
        for key, payload in (("push", body), ("again", body), ("change", changed(body, 5))):
            elapsed, requests, result = gw.push(apic, payload)
            runs[key].append((elapsed, requests, result["changes"]))
    t_base, n_base = baseline_push(apic, big_profile(args.epgs, args.contracts, tenant=f"base-{tag}"))

    def row(key: str, what: str) -> tuple[str, float]:
        ordered = sorted(runs[key])
        elapsed, requests, changes = ordered[len(ordered) // 2]
        return f"| {label} | {what} | {elapsed * 1000:.0f} ms | {requests} | {changes} |", elapsed

    push_line, t_push = row("push", "aci-gw first push")
    return [
        push_line,
        row("again", "aci-gw unchanged re-push")[0],
        row("change", "aci-gw change (5 EPGs, 5 contracts)")[0],
        f"| {label} | baseline, one request per object | {t_base * 1000:.0f} ms | {n_base} | {n_base} |",
        f"| {label} | **first push speed-up** | **{t_base / t_push:.1f}x** | "
        f"{n_base / max(runs['push'][0][1], 1):.0f}x fewer requests | |",
    ]


def _pick(apic: ApicMock, tenant: str, cls: str, k: int) -> str:
    """The DN of the ``k``-th object of class ``cls`` (modulo their number) in the tenant."""
    with apic.client() as user:
        imdata = user.get(f"/api/mo/uni/tn-{tenant}.json", params={"rsp-subtree": "full"}).json()["imdata"]
    dns = sorted(dn for dn, (c, _) in flatten_subtree(imdata).items() if c == cls)
    return dns[k % len(dns)]


def _repair_time(apic: ApicMock, dn: str, timeout: float = 30) -> tuple[float, int]:
    """Delete ``dn`` as an APIC user would; seconds until the gateway's repairing POST was answered, and
    the APIC requests the repair took."""
    with apic.client() as user:
        apic.admin.reset_stats()
        user.delete(f"/api/mo/{dn}.json").raise_for_status()
        deleted = time.perf_counter()
        deadline = time.monotonic() + timeout
        while True:
            log = apic.admin.stats()["log"]
            posts = [e for e in log if e["method"] == "POST" and e["status"] is not None]
            if posts:
                repaired = time.perf_counter() - deleted
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dn} not repaired within {timeout} s")
            time.sleep(0.002)
        if not user.get(f"/api/mo/{dn}.json").json()["imdata"]:
            raise RuntimeError(f"{dn} not back after the repair")
        requests = sum(1 for e in log if e["method"] != "DELETE" and not e["path"].startswith("/api/aaa")
                       and not _is_watch(e))
        return repaired, requests


def scale_round(apic: ApicMock, gw: GatewayProcess, args: argparse.Namespace, reference: float) -> list[str]:
    """1,000 EPGs and 1,000 contracts across ``args.tenants`` tenants, one app profile each."""
    n = args.tenants
    bodies = [big_profile(args.scale_epgs // n, args.scale_contracts // n, tenant=f"scale-{i}", app="app")
              for i in range(n)]
    label = f"+{args.latency_ms} ms/request" if args.latency_ms else "local mock"
    lines = []
    t_first, r_first, w_first = gw.push_all(apic, bodies)
    gw.wait_watched({f"scale-{i}" for i in range(n)})
    subscriptions = watch_requests(apic)
    lines.append(f"| {label} | first push, {n} profiles at once | {t_first * 1000:.0f} ms | {r_first} | {w_first} |")
    lines.append(f"| {label} | (drift watch: subscriptions after the first push) | | {subscriptions} | |")
    t_again, r_again, w_again = gw.push_all(apic, bodies)
    lines.append(f"| {label} | unchanged re-push, {n} profiles at once | {t_again * 1000:.0f} ms | {r_again} "
                 f"({r_again / n:.1f} per tenant) | {w_again} |")
    t_one, r_one, result = gw.push(apic, changed(bodies[0], 1))
    lines.append(f"| {label} | one EPG changed (one profile) | {t_one * 1000:.0f} ms | {r_one} | {result['changes']} |")
    gw.push(apic, bodies[0])  # back to the intent before the drift samples
    samples: list[tuple[float, int]] = []
    for k in range(args.repairs):
        cls = ("fvAEPg", "vzEntry", "vzBrCP")[k % 3]
        samples.append(_repair_time(apic, _pick(apic, f"scale-{k % n}", cls, k)))
    times = sorted(t for t, _ in samples)
    p50 = statistics.median(times)
    lines.append(f"| {label} | drift repair of one object ({args.repairs} samples: EPG, filter entry, contract) | "
                 f"p50 {p50 * 1000:.0f} ms (min {times[0] * 1000:.0f}, max {times[-1] * 1000:.0f}) | "
                 f"{statistics.median(r for _, r in samples):.0f} | |")
    lines.append(f"| {label} | **first push vs one 50-EPG profile (reference above)** | "
                 f"**{t_first / reference:.1f}x the time for {n}x the objects** | | |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epgs", type=int, default=50)
    parser.add_argument("--contracts", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="gateway runs per operation (median shown)")
    parser.add_argument("--latency-ms", type=int, default=10,
                        help="per-request APIC latency for the second round (0 to skip it)")
    parser.add_argument("--tenants", type=int, default=20, help="scale round: tenants (one profile each)")
    parser.add_argument("--scale-epgs", type=int, default=1000, help="scale round: EPGs in all (0 to skip)")
    parser.add_argument("--scale-contracts", type=int, default=1000, help="scale round: contracts in all")
    parser.add_argument("--repairs", type=int, default=9, help="scale round: drift repairs timed")
    args = parser.parse_args()
    lines = ["| APIC | operation | wall time | APIC requests (login excluded) | APIC objects written |",
             "|---|---|---|---|---|"]
    with ApicMock.start() as apic:
        login = apic.client()
        login.post("/api/mo/uni.json", json={"physDomP": {"attributes": {"name": PHYS_DOMAIN}}})
        login.close()
        gw = GatewayProcess(apic)
        try:
            lines += run_round(apic, gw, args, "local mock", "local")
            reference = [ln for ln in lines if "aci-gw first push" in ln][-1]
            if args.latency_ms:
                apic.admin.inject_fault("latency", delay_ms=args.latency_ms,
                                        path=r"^/api/(mo|class|node|subscriptionRefresh)")
                lines += run_round(apic, gw, args, f"+{args.latency_ms} ms/request", "latency")
                reference = [ln for ln in lines if "aci-gw first push" in ln][-1]
            if args.scale_epgs:
                t_ref = float(reference.split("|")[3].strip().split()[0]) / 1000
                scale = scale_round(apic, gw, args, t_ref)
        finally:
            gw.stop()
    print(f"app profile: {args.epgs} EPGs, {args.contracts} contracts (apic_mock over HTTPS, "
          f"{os.cpu_count()} cores)")
    print("\n".join(lines))
    if args.scale_epgs:
        print(f"\nscale: {args.scale_epgs} EPGs and {args.scale_contracts} contracts across {args.tenants} tenants")
        print("| APIC | operation | wall time | APIC requests (login, watch excluded) | APIC objects written |")
        print("|---|---|---|---|---|")
        print("\n".join(scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
