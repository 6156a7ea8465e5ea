"""Backup and move benchmark: how long ``netmaster export`` and ``netmaster import`` take for a real state.

Builds a state through the API of a netmaster on SQLite (networks, one endpoint group each, ``--endpoints``
endpoints), stops it, then times, as the operator would run them (separate processes, wall clock):

* ``netmaster export`` of the SQLite file (keys, document size);
* ``netmaster import`` of that document into a fresh etcd (default raft timing, data in a temp dir);
* ``netmaster import --force`` over it (delete the previous state, import again).

    python bench/netmaster_backup.py [--endpoints 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testbed.etcd import EtcdCluster  # noqa: E402
from testbed.netmaster import NetmasterProcess  # noqa: E402

NETWORKS = 8


async def build_state(url: str, endpoints: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for n in range(NETWORKS):
            net = {"tenantName": "default", "networkName": f"n{n}", "encap": "vxlan", "subnet": f"10.{n}.0.0/20"}
            (await http.post(f"/api/v1/networks/default:n{n}/", json=net)).raise_for_status()
            group = {"tenantName": "default", "groupName": f"g{n}", "networkName": f"n{n}"}
            (await http.post(f"/api/v1/endpointGroups/default:g{n}/", json=group)).raise_for_status()
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            n = i % NETWORKS
            body = {"endpointID": f"ep{i}", "networkName": f"n{n}", "groupName": f"g{n}", "host": f"h{i % 20}"}
            async with sem:
                (await http.post("/api/v1/endpoints/", json=body)).raise_for_status()

        await asyncio.gather(*(one(i) for i in range(endpoints)))


def timed(*args: str, stdin: str | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "netmaster", *args], input=stdin, capture_output=True, text=True, cwd=REPO, check=False
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"netmaster {' '.join(args)} failed: {result.stderr}")
    return took, result


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        sqlite_url = f"sqlite:///{tmp}/nm.db"
        with NetmasterProcess.start(sqlite_url) as nm:
            started = time.perf_counter()
            asyncio.run(build_state(nm.url, args.endpoints))
            built = time.perf_counter() - started
            print(f"state built:   {args.endpoints} endpoints on {NETWORKS} networks in {built:.1f} s")
        took, exported = timed("export", "--cluster-store", sqlite_url)
        doc = exported.stdout
        print(f"export:        {took:6.2f} s  ({exported.stderr.strip().removeprefix('netmaster: ')}, "
              f"{len(doc) / 1e6:.1f} MB)")  # fmt: skip
        cluster = EtcdCluster(Path(tmp) / "etcd", 1, timing=None).start()
        try:
            took, imported = timed("import", "--cluster-store", cluster.url, stdin=doc)
            print(f"import:        {took:6.2f} s  ({imported.stderr.strip().removeprefix('netmaster: ')})")
            took, imported = timed("import", "--force", "--cluster-store", cluster.url, stdin=doc)
            print(f"import --force:{took:6.2f} s  ({imported.stderr.strip().removeprefix('netmaster: ')})")
        finally:
            cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=4000)
    main(parser.parse_args())
