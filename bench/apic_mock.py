"""Benchmark apic_mock: class queries with a filter over ~10,000 objects, and 200-object POSTs.

Runs the real ``apic-mock`` process (HTTPS, its own CPU) and one sequential httpx client, and prints
requests per second. Usage: ``python bench/apic_mock.py [--seconds 5] [--http]``.
Figures vary with the machine; this is for orders of magnitude and regressions, never for asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from apic_mock.initial import mo
from testbed.apic import ApicMock


def tenant(name: str, bds: int, epgs: int) -> dict[str, Any]:
    """A tenant with a VRF, ``bds`` bridge domains (with subnet) and ``epgs`` EPGs bound to them."""
    return mo(
        "fvTenant",
        {"name": name},
        mo("fvCtx", {"name": "vrf"}),
        *[
            mo(
                "fvBD",
                {"name": f"bd{i}", "arpFlood": "yes" if i % 2 else "no"},
                mo("fvRsCtx", {"tnFvCtxName": "vrf"}),
                mo("fvSubnet", {"ip": f"10.{i // 250}.{i % 250}.1/24"}),
            )
            for i in range(bds)
        ],
        mo(
            "fvAp",
            {"name": "app"},
            *[
                mo("fvAEPg", {"name": f"epg{i}"}, mo("fvRsBd", {"tnFvBDName": f"bd{i % max(bds, 1)}"}))
                for i in range(epgs)
            ],
        ),
    )


def rate(label: str, seconds: float, call: Callable[[int], httpx.Response]) -> float:
    """Run ``call`` sequentially for ``seconds``; print and return requests per second."""
    latencies = []
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = call(count)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{label}: HTTP {response.status_code}: {response.text[:200]}")
        count += 1
    per_second = count / sum(latencies)
    p50 = statistics.median(latencies) * 1000
    p95 = sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000
    print(f"{label:<58} {per_second:8.1f} req/s   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   (n={count})")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    args = parser.parse_args()
    with ApicMock.start(subprocess=True, http=args.http, demo_fabric=False) as apic, apic.client() as c:
        for t in range(40):  # 40 tenants x ~250 objects
            c.post("/api/mo/uni.json", json=tenant(f"t{t}", bds=40, epgs=40)).raise_for_status()
        total = apic.admin.health()["objects"]
        bds = c.get("/api/class/fvBD.json?rsp-subtree-include=count").json()["imdata"][0]["moCount"]
        print(
            f"apic_mock over {'HTTP' if args.http else 'HTTPS'}; tree: {total} objects, "
            f"{bds['attributes']['count']} fvBD; one sequential client\n"
        )
        one = 'eq(fvBD.name,"bd7")'
        rate(
            f"class query fvBD, filter {one} (40 hits)",
            args.seconds,
            lambda i: c.get(f"/api/class/fvBD.json?query-target-filter={one}"),
        )
        narrow = 'and(eq(fvBD.name,"bd7"),wcard(fvBD.dn,"tn-t3/"))'
        rate(
            "class query fvBD, and(eq,wcard) filter (1 hit)",
            args.seconds,
            lambda i: c.get(f"/api/class/fvBD.json?query-target-filter={narrow}"),
        )
        rate(
            "class query fvRsBd, filter on resolved state (1600 objs)",
            args.seconds,
            lambda i: c.get(
                '/api/class/fvRsBd.json?query-target-filter=eq(fvRsBd.state,"formed")'
                "&rsp-subtree-include=count"
            ),
        )
        rate(
            "DN query uni/tn-t1 rsp-subtree=full (~250 objects)",
            args.seconds,
            lambda i: c.get("/api/mo/uni/tn-t1.json?rsp-subtree=full"),
        )
        body = tenant("x", bds=30, epgs=40)  # 1+3 + 1+1 + 30*3 + 1 + 40*3 = 217 objects with implicit ones
        rate(
            "POST 200-object subtree, new tenant each time (create)",
            args.seconds,
            lambda i: c.post(
                "/api/mo/uni.json", json={"fvTenant": {**body["fvTenant"], "attributes": {"name": f"new{i}"}}}
            ),
        )
        c.post("/api/mo/uni.json", json=body).raise_for_status()
        rate(
            "POST 200-object subtree, unchanged (merge, no-op)",
            args.seconds,
            lambda i: c.post("/api/mo/uni.json", json=body),
        )
        rate(
            "POST 200-object subtree, unchanged, rsp-subtree=modified",
            args.seconds,
            lambda i: c.post("/api/mo/uni.json?rsp-subtree=modified", json=body),
        )


if __name__ == "__main__":
    main()
