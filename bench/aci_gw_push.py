"""Benchmark: push an app profile of 50 EPGs and 50 contracts through aci-gw, side by side with a
baseline client that creates the same objects one request per object, as typical automation does.

Both run against apic_mock over HTTPS on this machine. The gateway runs as its real command (``aci-gw``
in a subprocess) and is driven through its Contiv API; the baseline logs in once and POSTs every MO
of the same desired tree to its parent, parent first. APIC requests are counted by the mock (logins
excluded). A second round adds a fixed latency to every APIC request, to show what a real APIC's
per-request cost does to each approach.

    python bench/aci_gw_push.py [--epgs 50] [--contracts 50] [--latency-ms 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "aci_gw"))

from aci_gw_payloads import PHYS_DOMAIN, big_profile  # noqa: E402

from aci_gw.config import FabricSettings  # noqa: E402
from aci_gw.mo import Mo  # noqa: E402
from aci_gw.translate import ApicFacts, translate  # noqa: E402
from contiv_api.aci_gw_payload import parse_app_profile  # noqa: E402
from testbed.apic import ApicMock  # noqa: E402


def apic_requests(apic: ApicMock) -> int:
    """Requests to the APIC API since the last reset, logins and refreshes excluded."""
    stats = apic.admin.stats(log=False)
    return sum(n for path, n in stats["by_path"].items() if "/api/aaa" not in path)


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
        result = self.http.post("/createAppProf", json=body).json()
        elapsed = time.perf_counter() - started
        if result["result"] != "success":
            raise RuntimeError(f"push failed: {result}")
        return elapsed, apic_requests(apic), result

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epgs", type=int, default=50)
    parser.add_argument("--contracts", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="gateway runs per operation (median shown)")
    parser.add_argument("--latency-ms", type=int, default=10,
                        help="per-request APIC latency for the second round (0 to skip it)")
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
            if args.latency_ms:
                apic.admin.inject_fault("latency", delay_ms=args.latency_ms, path=r"^/api/(mo|class|node)/")
                lines += run_round(apic, gw, args, f"+{args.latency_ms} ms/request", "latency")
        finally:
            gw.stop()
    print(f"app profile: {args.epgs} EPGs, {args.contracts} contracts (apic_mock over HTTPS, "
          f"{os.cpu_count()} cores)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
