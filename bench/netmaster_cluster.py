"""Cluster benchmark, part 1 (store level): what etcd gives netmaster, measured on this machine.

Prints:
* put latency p50/p99 (one client, sequential puts);
* allocations/s through compare-and-swap transactions, with 1 and 2 "netmasters" (separate processes,
  each its own etcd client running ``--concurrency`` allocations at once) all drawing from ONE pool:
  the worst case, every allocation contends for the same key. The run checks that no value was
  handed out twice;
* leader failover time: a leader process is SIGKILLed; time until a standby process leads;
* watch delivery latency p50/p99: from put (one client) to event (another client);
* the same through netmaster: from sending ``POST /api/v1/endpoints/`` to the event on the HTTP watch
  stream of another client (includes the endpoint's allocation transaction).

etcd runs with its default raft timing (heartbeat 100 ms, election 1 s) in a temporary directory.

    python bench/netmaster_cluster.py [--allocations 3000] [--concurrency 8] [--ttl 4] [--trials 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netmaster.ha.leader import DEFAULT_TTL  # noqa: E402
from netmaster.store.base import Compare, Put  # noqa: E402
from netmaster.store.etcd import EtcdStore  # noqa: E402
from testbed.etcd import EtcdCluster  # noqa: E402

POOL = "/bench/pool"
RECORD = "/bench/alloc/"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- allocation worker (runs in its own process: one "netmaster") ---------------------------------------


class Allocator:
    """Takes the next value of the pool by compare-and-swap, as a netmaster allocator would.

    ``local_lock``: allocations of one process go through the pool one at a time, reusing the pool's
    revision from its own last commit; only other processes can then make a CAS fail. Without it
    every task reads and commits on its own, colliding with its siblings too, and retries after a
    jittered pause the way ``netmaster.store.txn.run_txn`` does.
    """

    def __init__(self, store: EtcdStore, owner: str, local_lock: bool) -> None:
        self.store = store
        self.owner = owner
        self.lock = asyncio.Lock() if local_lock else None
        self.known: tuple[int, int] | None = None  # (value, mod_revision) after our own last commit
        self.conflicts = 0

    async def allocate(self) -> int:
        if self.lock is None:
            return await self._allocate(cached=False)
        async with self.lock:
            return await self._allocate(cached=True)

    async def _allocate(self, cached: bool) -> int:
        attempt = 0
        while True:
            if cached and self.known is not None:
                current, mod = self.known
            else:
                kv = await self.store.get(POOL)
                current, mod = (int(kv.value), kv.mod_revision) if kv else (0, 0)
            value = current + 1
            record = f"{RECORD}{value:08d}"
            res = await self.store.txn(
                [Compare(POOL, mod), Compare(record, 0)], [Put(POOL, str(value)), Put(record, self.owner)]
            )
            if res.succeeded:
                self.known = (value, res.revision)
                return value
            self.known = None
            self.conflicts += 1
            if not cached:
                await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))
            attempt += 1


async def worker(url: str, owner: str, count: int, concurrency: int, local_lock: bool) -> None:
    store = EtcdStore.from_url(url)
    await store.revision()  # connect before the clock starts
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the start signal
    allocator = Allocator(store, owner, local_lock)
    remaining = [count]

    async def loop() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await allocator.allocate()

    start = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    print(json.dumps({"elapsed": time.monotonic() - start, "conflicts": allocator.conflicts}), flush=True)
    await store.close()


async def bench_allocations(
    url: str, netmasters: int, total: int, concurrency: int, local_lock: bool
) -> dict[str, float]:
    store = EtcdStore.from_url(url)
    await store.txn([], [Put(POOL, "0")])
    kvs, _ = await store.list(RECORD)
    for kv in kvs:
        await store.delete(kv.key)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", url, f"nm{i}", str(total // netmasters), str(concurrency),
            "lock" if local_lock else "nolock",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO,
        )
        for i in range(netmasters)
    ]  # fmt: skip
    for p in procs:
        assert (await asyncio.wait_for(p.stdout.readline(), 30)).strip() == b"ready"  # type: ignore[union-attr]
    start = time.monotonic()
    for p in procs:
        p.stdin.write(b"go\n")  # type: ignore[union-attr]
        await p.stdin.drain()  # type: ignore[union-attr]
    results = [json.loads(await asyncio.wait_for(p.stdout.readline(), 300)) for p in procs]  # type: ignore[union-attr]
    wall = time.monotonic() - start
    for p in procs:
        await p.wait()
    kvs, _ = await store.list(RECORD)
    values = [int(kv.key[len(RECORD) :]) for kv in kvs]
    pool = await store.get(POOL)
    await store.close()
    done = (total // netmasters) * netmasters
    assert len(values) == len(set(values)) == done, "duplicate or lost allocation"
    assert pool is not None
    assert int(pool.value) == done
    return {
        "per_s": done / wall,
        "conflicts": sum(r["conflicts"] for r in results),
        "allocations": done,
    }


# -- put latency, watch latency ---------------------------------------------------------------------------


async def bench_put_latency(url: str, n: int = 1000) -> tuple[float, float]:
    store = EtcdStore.from_url(url)
    await store.revision()
    samples = []
    for i in range(n):
        t = time.perf_counter()
        await store.put(f"/bench/put/{i % 50}", "x" * 200)
        samples.append(time.perf_counter() - t)
    await store.close()
    return pct(samples, 0.5), pct(samples, 0.99)


async def bench_watch_latency(url: str, n: int = 500) -> tuple[float, float]:
    writer, reader = EtcdStore.from_url(url), EtcdStore.from_url(url)
    since = await writer.revision()
    samples: list[float] = []

    async def watch() -> None:
        async for ev in reader.watch("/bench/watch/", since):
            samples.append(time.perf_counter() - float(ev.value or 0))
            if len(samples) == n:
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    for i in range(n):
        await writer.put(f"/bench/watch/{i % 10}", repr(time.perf_counter()))
        await asyncio.sleep(0.002)
    await asyncio.wait_for(watcher, 30)
    await writer.close()
    await reader.close()
    return pct(samples, 0.5), pct(samples, 0.99)


async def bench_api_watch_latency(url: str, n: int = 200) -> tuple[float, float]:
    """Through netmaster: from sending POST /api/v1/endpoints/ to the agent-side watch event."""
    from contiv_api.netmaster_client import NetmasterClient
    from contiv_api.watch_format import Change
    from testbed.netmaster import NetmasterProcess

    nm = await asyncio.to_thread(NetmasterProcess.spawn, url)
    try:
        async with NetmasterClient(nm.url) as writer, NetmasterClient(nm.url) as watcher:
            await writer.request("POST", "/api/v1/networks/default:bench/",
                                 {"tenantName": "default", "networkName": "bench", "encap": "vxlan",
                                  "subnet": "10.99.0.0/16"})  # fmt: skip
            sent: dict[str, float] = {}
            samples: list[float] = []
            done = asyncio.Event()

            async def follow() -> None:
                async for item in watcher.follow():
                    if isinstance(item, Change) and item.type == "put" and item.state.key in sent:
                        samples.append(time.perf_counter() - sent.pop(item.state.key))
                        if len(samples) == n:
                            done.set()
                            return

            task = asyncio.create_task(follow())
            await asyncio.sleep(0.5)
            for i in range(n):
                sent[f"bench-{i}"] = time.perf_counter()
                await writer.create_endpoint(f"bench-{i}", network="bench", host="h")
                await asyncio.sleep(0.005)
            await asyncio.wait_for(done.wait(), 30)
            task.cancel()
            return pct(samples, 0.5), pct(samples, 0.99)
    finally:
        await asyncio.to_thread(nm.stop)


async def bench_api_allocations(cluster: EtcdCluster, netmasters: int, total: int, clients: int) -> float:
    """Through netmaster: endpoint creations per second, every client on one network (one address pool),
    the clients spread over *netmasters* processes. What the API does with a hot pool, end to end."""
    from contiv_api.netmaster_client import NetmasterClient
    from testbed.netmaster import NetmasterProcess

    await asyncio.to_thread(cluster.wipe)  # a fresh keyspace: no endpoints of an earlier round
    nms = [await asyncio.to_thread(NetmasterProcess.spawn, cluster.url) for _ in range(netmasters)]
    try:
        async with NetmasterClient(nms[0].url) as admin:
            await admin.request("POST", "/api/v1/networks/default:hot/",
                                {"tenantName": "default", "networkName": "hot", "encap": "vxlan",
                                 "subnet": "10.98.0.0/16"})  # fmt: skip
        per_client = total // clients

        async def client(n: int) -> None:
            async with NetmasterClient(nms[n % netmasters].url) as c:
                for i in range(per_client):
                    await c.create_endpoint(f"api-{n}-{i}", network="hot", host=f"h{n}")

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return per_client * clients / (time.perf_counter() - started)
    finally:
        for nm in nms:
            await asyncio.to_thread(nm.stop)


# -- leader failover ----------------------------------------------------------------------------------------


async def _elector(url: str, name: str, ttl: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cluster_state.elector_process", url, name, str(ttl),
        stdout=asyncio.subprocess.PIPE, cwd=REPO, start_new_session=True,
    )  # fmt: skip


async def _until_event(proc: asyncio.subprocess.Process, event: str, within: float) -> dict:
    async with asyncio.timeout(within):
        while True:
            line = await proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(f"elector exited before {event}")
            msg = json.loads(line)
            if msg["event"] == event:
                return msg


async def bench_failover(url: str, ttl: float, trials: int) -> list[float]:
    times = []
    for trial in range(trials):
        leader = await _elector(url, f"leader{trial}", ttl)
        await _until_event(leader, "leader", 30)
        standby = await _elector(url, f"standby{trial}", ttl)
        await _until_event(standby, "started", 30)
        await asyncio.sleep(1.0 + trial * ttl / 7)  # vary where in the renewal cycle the kill lands
        killed = time.time()
        os.kill(leader.pid, signal.SIGKILL)
        took_over = await _until_event(standby, "leader", 3 * ttl + 5)
        times.append(took_over["t"] - killed)
        await leader.wait()
        standby.terminate()  # a clean stop revokes the lease: the next trial starts at once
        await standby.wait()
    return times


# -- main -----------------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-etcd-") as tmp:
        cluster = EtcdCluster(Path(tmp), args.members, timing=None).start(timeout=30)
        url = cluster.url
        try:
            print(f"etcd {args.members} member(s), default raft timing, data in {tmp}; {os.cpu_count()} CPUs")
            if args.api_only:
                for n in (1, 2):
                    rate = await bench_api_allocations(cluster, n, args.api_endpoints, 16)
                    print(f"API endpoint creates: {rate:6.0f} /s  {n} netmaster(s), 16 clients, one network")
                return
            p50, p99 = await bench_put_latency(url)
            print(f"put latency:        p50 {p50 * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms  (1000 sequential puts)")
            for local_lock in (False, True):
                for n in (1, 2):
                    r = await bench_allocations(url, n, args.allocations, args.concurrency, local_lock)
                    how = "serialized per process" if local_lock else "every task for itself"
                    print(
                        f"CAS allocations:    {r['per_s']:7.0f} /s  {n} netmaster(s) x {args.concurrency} in flight,"
                        f" {how}  ({r['allocations']} from one pool, {r['conflicts']} CAS retries, no duplicates)"
                    )
            w50, w99 = await bench_watch_latency(url)
            print(f"watch delivery:     p50 {w50 * 1000:6.2f} ms   p99 {w99 * 1000:6.2f} ms  (put -> event, 500)")
            a50, a99 = await bench_api_watch_latency(url)
            print(f"API watch delivery: p50 {a50 * 1000:6.2f} ms   p99 {a99 * 1000:6.2f} ms  (POST -> event, 200)")
            for n in (1, 2):
                rate = await bench_api_allocations(cluster, n, args.api_endpoints, 16)
                print(f"API endpoint creates: {rate:6.0f} /s  {n} netmaster(s), 16 clients, one network"
                      f" ({args.api_endpoints} creates)")
            times = await bench_failover(url, args.ttl, args.trials)
            print(
                f"leader failover:    mean {statistics.mean(times):.2f} s  max {max(times):.2f} s"
                f"  (lease TTL {args.ttl:g} s, SIGKILL -> standby leads, {args.trials} trials:"
                f" {', '.join(f'{t:.2f}' for t in times)})"
            )
        finally:
            cluster.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, url, owner, count, concurrency, lock = sys.argv
        asyncio.run(worker(url, owner, int(count), int(concurrency), lock == "lock"))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1, help="etcd members (default 1)")
    parser.add_argument("--allocations", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8, help="allocations in flight per netmaster")
    parser.add_argument(
        "--ttl", type=float, default=DEFAULT_TTL, help=f"leader lease TTL (netmaster default {DEFAULT_TTL:g} s)"
    )
    parser.add_argument("--trials", type=int, default=3, help="leader failover trials")
    parser.add_argument("--api-endpoints", type=int, default=1600, help="endpoint creates through the API")
    parser.add_argument("--api-only", action="store_true", help="only the endpoint creates through the API")
    asyncio.run(main(parser.parse_args()))
