"""Latency and throughput of netmaster's API on its embedded SQLite store.

Starts a real netmaster process on a scratch SQLite file and, over HTTP with a kept-alive
connection, measures:

* object create latency (p50/p99) for tenants, networks, endpoint groups and policy rules;
* endpoint create latency (p50/p99);
* the wall time of 1,000 endpoint creations spread over 10 networks, from one client and from 8
  concurrent clients.

Usage: ``python bench/netmaster_api.py [--store sqlite:///tmp/x.db]``. It prints a table; nothing
is asserted (see docs/performance.md for recorded figures).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from testbed.netmaster import NetmasterProcess


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: a scratch SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"sqlite://{Path(tmp) / 'bench.db'}"
        with NetmasterProcess.start(store) as nm:
            rows = bench(nm.url)
    print(f"netmaster API on {store.split('://')[0]} (python {'.'.join(map(str, __import__('sys').version_info[:3]))})")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
