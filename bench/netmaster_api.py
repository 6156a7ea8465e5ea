"""netmaster's API latency, side by side with Contiv's own netmaster, in one interleaved run.

Default: starts Contiv's Go netmaster (``../shared/contiv-reference/run-netmaster``, its own etcd) and
ours twice (on SQLite, and on an etcd of its own from testbed.etcd), then sends every request to each
of them in turn over kept-alive connections: creates of tenants (the first ``--objects`` also get a
network, an EPG, a policy and a rule), then, at each of ``--sizes`` tenants, GET of one tenant and
list of all tenants. Prints p50/p99 per target and ours/Contiv's p50 ratio. Without the reference
binaries the Contiv column is left out (said so).

``--detail``: the single-store run: object and endpoint create latency and the wall time of 1,000
endpoint creations from one and from 8 clients (``--store`` URL, default a scratch SQLite file).

Nothing is asserted; recorded figures are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from testbed.etcd import EtcdCluster
from testbed.netmaster import NetmasterProcess
from testbed.ports import free_port


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, *args, **kwargs) -> float:
    started = time.perf_counter()
    response = fn(*args, **kwargs)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"request failed: {response.status_code} {response.text}")
    return elapsed


def bench(url: str) -> list[tuple[str, str]]:
    http = httpx.Client(base_url=url, timeout=30)
    rows: list[tuple[str, str]] = []

    def report(name: str, samples: list[float]) -> None:
        rows.append(
            (
                name,
                f"p50 {percentile(samples, 0.5) * 1000:.2f} ms   p99 {percentile(samples, 0.99) * 1000:.2f} ms"
                f"   (n={len(samples)})",
            )
        )

    report("tenant create", [timed(http.post, f"/api/v1/tenants/bt{i}/", json={}) for i in range(200)])
    report(
        "network create",
        [
            timed(http.post, f"/api/v1/networks/bt{i}:net/", json={"encap": "vxlan", "subnet": "10.1.0.0/16"})
            for i in range(200)
        ],
    )
    report(
        "endpoint group create",
        [timed(http.post, f"/api/v1/endpointGroups/bt{i}:web/", json={"networkName": "net"}) for i in range(200)],
    )
    for i in range(200):
        http.post(f"/api/v1/policys/bt{i}:p/", json={})
    report(
        "rule create",
        [
            timed(
                http.post,
                f"/api/v1/rules/bt{i}:p:1/",
                json={"direction": "in", "action": "allow", "protocol": "tcp", "port": 80},
            )
            for i in range(200)
        ],
    )
    report(
        "endpoint create",
        [
            timed(
                http.post,
                "/api/v1/endpoints/",
                json={"endpointID": f"lat{i}", "tenantName": f"bt{i % 200}", "networkName": "net", "groupName": "web"},
            )
            for i in range(500)
        ],
    )

    for n in range(10):
        http.post(f"/api/v1/networks/default:bulk{n}/", json={"encap": "vlan", "subnet": f"10.{100 + n}.0.0/22"})
    started = time.perf_counter()
    for i in range(1000):
        r = http.post("/api/v1/endpoints/", json={"endpointID": f"seq{i}", "networkName": f"bulk{i % 10}"})
        assert r.status_code == 200, r.text
    rows.append(("1,000 endpoints / 10 networks, 1 client", f"{time.perf_counter() - started:.2f} s"))

    def worker(w: int) -> None:
        client = httpx.Client(base_url=url, timeout=30)
        for i in range(125):
            r = client.post("/api/v1/endpoints/", json={"endpointID": f"par{w}-{i}", "networkName": f"bulk{i % 10}"})
            assert r.status_code == 200, r.text

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    rows.append(("1,000 endpoints / 10 networks, 8 clients", f"{time.perf_counter() - started:.2f} s"))
    counts = [http.get(f"/api/v1/inspect/networks/default:bulk{n}/").json()["Oper"]["numEndpoints"] for n in range(10)]
    rows.append(("endpoints counted in inspect", f"{sum(counts)} (expected 2000)"))
    return rows


# -- side by side with Contiv's own netmaster -------------------------------------------------------

CONTIV_REFERENCE = Path(
    os.environ.get("CONTIV_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "contiv-reference")
)


@contextlib.contextmanager
def contiv_netmaster(tmp: Path) -> Iterator[str | None]:
    """Contiv's Go netmaster on its own etcd (run-netmaster), or None where it is absent."""
    script = CONTIV_REFERENCE / "run-netmaster"
    if not script.exists():
        print(f"note: {script} absent: no Contiv column")
        yield None
        return
    port = free_port()
    workdir = tmp / "contiv"
    subprocess.run([str(script), "start", str(workdir), str(port)], check=True, timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([str(script), "stop", str(workdir)], check=False, timeout=60)


def _bodies(i: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(what, path, body) of one tenant's objects, in Contiv's full form (its netmaster needs every key)."""
    t = f"bt{i}"
    return [
        ("tenant create", f"/api/v1/tenants/{t}/", {"key": t, "tenantName": t}),
        (
            "network create",
            f"/api/v1/networks/{t}:net/",
            {
                "key": f"{t}:net",
                "tenantName": t,
                "networkName": "net",
                "encap": "vlan",
                "subnet": "10.1.0.0/16",
                "nwType": "data",
            },
        ),
        (
            "endpoint group create",
            f"/api/v1/endpointGroups/{t}:web/",
            {"key": f"{t}:web", "tenantName": t, "groupName": "web", "networkName": "net"},
        ),
        ("policy create", f"/api/v1/policys/{t}:p/", {"key": f"{t}:p", "tenantName": t, "policyName": "p"}),
        (
            "rule create",
            f"/api/v1/rules/{t}:p:1/",
            {
                "key": f"{t}:p:1",
                "tenantName": t,
                "policyName": "p",
                "ruleId": "1",
                "direction": "in",
                "action": "allow",
                "protocol": "tcp",
                "port": 80,
                "priority": 1,
            },
        ),
    ]


def compare(targets: dict[str, str], sizes: list[int], gets: int, lists: int, full_objects: int) -> None:
    """One interleaved run: every request goes to each target in turn, so load hits them alike."""
    clients = {name: httpx.Client(base_url=url, timeout=30) for name, url in targets.items()}
    samples: dict[tuple[str, str], list[float]] = {}

    def each(what: str, method: str, path: str, body: Any = None) -> None:
        for name, http in clients.items():
            started = time.perf_counter()
            response = http.request(method, path, json=body)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise SystemExit(f"{name}: {method} {path}: {response.status_code} {response.text[:200]}")
            samples.setdefault((what, name), []).append(elapsed)

    made = 0
    for size in sizes:
        for i in range(made, size):
            for what, path, body in _bodies(i)[: 5 if i < full_objects else 1]:
                each(what if made == 0 else f"{what} (to {size})", "POST", path, body)
        made = size
        for n in range(gets):
            each(f"GET one tenant, {size} exist", "GET", f"/api/v1/tenants/bt{n * 7919 % size}/")
        for _ in range(lists):
            each(f"list tenants, {size} exist", "GET", "/api/v1/tenants/")
    names = list(targets)
    reference = "contiv" if "contiv" in targets else None
    print(f"p50 / p99 in ms, {', '.join(names)}" + ("; ratio = ours p50 / contiv p50" if reference else ""))
    whats = list(dict.fromkeys(what for what, _ in samples))
    width = max(len(w) for w in whats)
    for what in whats:
        cells = []
        for name in names:
            values = samples[(what, name)]
            p50 = percentile(values, 0.5) * 1000
            cell = f"{name} {p50:6.2f} / {percentile(values, 0.99) * 1000:6.2f}"
            if reference and name != reference:
                cell += f" ({p50 / (percentile(samples[(what, reference)], 0.5) * 1000):.2f}x)"
            cells.append(cell)
        print(f"  {what:<{width}}  n={len(samples[(what, names[0])]):<4} " + "   ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL for --detail (default: a scratch SQLite file)")
    parser.add_argument(
        "--detail", action="store_true", help="the single-store run (creates, endpoints, throughput) instead"
    )
    parser.add_argument("--sizes", default="150,1000", help="tenant counts to measure reads at (default %(default)s)")
    parser.add_argument("--gets", type=int, default=500, help="GETs of one tenant per size")
    parser.add_argument("--lists", type=int, default=50, help="lists of all tenants per size")
    parser.add_argument("--objects", type=int, default=150, help="tenants that also get a network, EPG, policy, rule")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.detail:
            store = args.store or f"sqlite://{Path(tmp) / 'bench.db'}"
            with NetmasterProcess.start(store) as nm:
                rows = bench(nm.url)
            print(f"netmaster API on {store.split('://')[0]} (python {'.'.join(map(str, sys.version_info[:3]))})")
            width = max(len(name) for name, _ in rows)
            for name, value in rows:
                print(f"  {name:<{width}}  {value}")
            return
        etcd = EtcdCluster(Path(tmp) / "etcd", 1).start()
        try:
            with (
                contiv_netmaster(Path(tmp)) as contiv,
                NetmasterProcess.start(f"sqlite://{Path(tmp) / 'bench.db'}") as ours_sqlite,
                NetmasterProcess.start(etcd.url) as ours_etcd,
            ):
                targets = {"contiv": contiv} if contiv else {}
                targets.update({"sqlite": ours_sqlite.url, "etcd": ours_etcd.url})
                sizes = [int(s) for s in args.sizes.split(",")]
                compare(targets, sizes, args.gets, args.lists, args.objects)  # type: ignore[arg-type]
        finally:
            etcd.stop()


if __name__ == "__main__":
    main()
