"""Scale benchmark: many simulated agents following netmaster's watch while endpoints are created.

The cluster: ``--tenants`` tenants, ``--networks`` networks spread over them, ``--endpoints`` endpoints
with ``--per-host`` endpoints on each host (hosts = endpoints / per-host), each endpoint on a random
network. ``--agents`` of those hosts run a simulated agent: a light watch client (no OVS), many per
process (``--agent-procs`` processes, asyncio, raw httpx streaming), each taking its own snapshot and
then following ``GET /api/v1/watch`` with its ``X-Contiv-Agent`` header as a real agent does.

Phases, for 1 and then 2 netmasters on one etcd (agents spread over the netmasters round robin):

1. preload: ``endpoints - steady`` endpoints created through the API (``--writers`` clients at once);
2. every agent takes a snapshot (bytes and objects per agent printed) and starts watching;
3. steady: ``--steady`` endpoint creates at ``--rate`` per second, each on a host with an agent;
   printed: endpoint create (POST sent) -> event received by every *interested* agent (one whose host
   has a preloaded endpoint on the endpoint's network: netmaster sends an agent only its host's span,
   netmaster.api.span, and a steady create may widen a span; lines of steady endpoints delivered to
   any agent are counted too), p50/p99 over (endpoint, agent) pairs and p50/p99 of "the last
   interested agent has it" per endpoint; agents that had to re-list (410); netmaster RSS after the run.

The agents parse only what they need of each line (the key, found by a byte search): the client side
shares the machine with netmaster and etcd, and a full JSON decode per line per agent would measure
Python's JSON decoder rather than netmaster. The send time travels in the endpoint ID.

    python bench/netmaster_scale.py                       # the issue's sizes (takes long on 2 cores)
    python bench/netmaster_scale.py --agents 200 --endpoints 5000 --steady 1000 --rate 100
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contiv_api.netmaster_client import AGENT_HEADER, NetmasterClient, NetmasterError  # noqa: E402
from testbed.etcd import EtcdCluster  # noqa: E402
from testbed.netmaster import NetmasterProcess  # noqa: E402

STEADY_PREFIX = "st-"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class Layout:
    """Where every endpoint is: deterministic from the sizes and the seed, so agent processes agree."""

    tenants: int
    networks: int
    endpoints: int
    per_host: int
    seed: int
    steady: int = 0  # of the endpoints, the last ``steady`` are created during the steady phase

    @property
    def hosts(self) -> int:
        return max(1, self.endpoints // self.per_host)

    def tenant_of(self, net: int) -> str:
        return f"bt{net % self.tenants}"

    def network_name(self, net: int) -> str:
        return f"bn{net}"

    def placements(self) -> list[tuple[int, int]]:
        """(host, network) of every endpoint, in creation order."""
        rnd = random.Random(self.seed)
        return [(i % self.hosts, rnd.randrange(self.networks)) for i in range(self.endpoints)]

    def interest(self) -> dict[int, set[int]]:
        """host -> the networks its preloaded endpoints are on (its span when the steady phase starts)."""
        out: dict[int, set[int]] = {}
        for host, net in self.placements()[: self.endpoints - self.steady]:
            out.setdefault(host, set()).add(net)
        return out


def steady_id(seq: int, host: int, net: int, sent: float) -> str:
    return f"{STEADY_PREFIX}{seq}-h{host}-n{net}-t{int(sent * 1e6)}"


def parse_steady(key: str) -> tuple[int, float]:
    """(network, send time) of a steady endpoint's ID."""
    parts = key.split("-")
    return int(parts[3][1:]), int(parts[4][1:]) / 1e6


# -- agent processes -------------------------------------------------------------------------------------


async def take_snapshot(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[int, int, int]:
    """(revision, bytes, objects) of one snapshot; the snapshot itself is dropped (a thousand copies
    would not fit in memory)."""
    resp = await http.get(f"{url}/api/v1/snapshot", headers=headers)
    resp.raise_for_status()
    snap = json.loads(resp.content)
    return int(snap["revision"]), len(resp.content), len(snap["objects"])


class Gone(Exception):
    """The watch answered 410: take a new snapshot."""


async def watch_lines(url: str, since: int, agent: str) -> AsyncIterator[bytes]:
    """The lines of ``GET /api/v1/watch?since=`` over a plain asyncio stream: HTTP/1.1 chunked decoding
    and line splitting in a few bytes operations per chunk. httpx's per-line machinery cost these
    simulated agents more CPU than netmaster spent serving them, and they share its cores."""
    target = httpx.URL(url)
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        request = f"GET /api/v1/watch?since={since} HTTP/1.1\r\nHost: {target.host}\r\n{AGENT_HEADER}: {agent}\r\n\r\n"
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 410:
            raise Gone
        if status != 200 or b"chunked" not in head.lower():
            raise ValueError(f"watch answered {head[:200]!r}")
        pending = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if not size:
                return
            data = pending + (await reader.readexactly(size + 2))[:-2]
            *lines, pending = data.split(b"\n")
            for line in lines:
                yield line
    finally:
        writer.close()


async def run_agent(
    http: httpx.AsyncClient,
    url: str,
    host: int,
    nets: set[int],
    stats: dict,
    stop: asyncio.Event,
    snapshots: asyncio.Semaphore,
    on_first_snapshot: Callable[[], None],
) -> None:
    """One simulated agent: snapshot, then the watch from its revision; re-lists on 410."""
    headers = {AGENT_HEADER: f"host{host}"}
    since: int | None = None
    while not stop.is_set():
        try:
            if since is None:
                async with snapshots:  # the heavy part: a few at once per process
                    since, size, objects = await take_snapshot(http, url, headers)
                if host in stats["agents"]:
                    stats["relists"] += 1
                else:
                    stats["agents"][host] = {"snapshot_bytes": size, "snapshot_objects": objects}
                    on_first_snapshot()
            async for line in watch_lines(url, since, headers[AGENT_HEADER]):
                now = time.time()
                at = line.find(b'"key":"' + STEADY_PREFIX.encode())
                if at >= 0:
                    key = line[at + 7 : line.index(b'"', at + 7)].decode()
                    net, sent = parse_steady(key)
                    stats["all"] += 1
                    if net in nets:
                        stats["lat"].setdefault(key, []).append(now - sent)
                elif line.startswith(b'{"type":"bookmark"'):
                    since = json.loads(line)["revision"]
                elif line.startswith(b'{"type":"error"'):
                    if json.loads(line).get("status") == 410:
                        since = None
                    break
        except Gone:
            since = None
        except (httpx.HTTPError, ValueError, OSError, EOFError, asyncio.LimitOverrunError):
            if not stop.is_set():
                await asyncio.sleep(0.5)


async def agent_process(urls: list[str], hosts: list[int], layout: Layout) -> None:
    interest = layout.interest()
    stats: dict = {"agents": {}, "lat": {}, "all": 0, "relists": 0}
    stop, all_ready = asyncio.Event(), asyncio.Event()

    def on_first_snapshot() -> None:
        if len(stats["agents"]) == len(hosts):
            all_ready.set()

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(60.0, read=120.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        snapshots = asyncio.Semaphore(4)
        tasks = [
            asyncio.create_task(
                run_agent(
                    http, urls[h % len(urls)], h, interest.get(h, set()), stats, stop, snapshots, on_first_snapshot
                )
            )
            for h in hosts
        ]
        await all_ready.wait()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the stop signal
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(stats), flush=True)


# -- the driver ------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat): a contended machine stretches
    latencies, while CPU per create stays a property of the code."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def subnet(net: int) -> str:
    """A /20 of 10.0.0.0/8 per network (4,096 networks at most)."""
    return f"{ipaddress.ip_address('10.0.0.0') + 4096 * net}/20"


async def create_topology(client: NetmasterClient, layout: Layout) -> None:
    for t in range(layout.tenants):
        await client.request("POST", f"/api/v1/tenants/bt{t}/", {"tenantName": f"bt{t}"})
    for n in range(layout.networks):
        tenant, name = layout.tenant_of(n), layout.network_name(n)
        body = {"tenantName": tenant, "networkName": name, "encap": "vxlan", "subnet": subnet(n)}
        await client.request("POST", f"/api/v1/networks/{tenant}:{name}/", body)


async def preload(urls: list[str], layout: Layout, count: int, writers: int) -> float:
    todo = list(enumerate(layout.placements()[:count]))
    started = time.perf_counter()

    async def writer(w: int) -> None:
        async with NetmasterClient(urls[w % len(urls)]) as c:
            while todo:
                i, (host, net) = todo.pop()
                await c.create_endpoint(f"pre-{i}", network=layout.network_name(net),
                                        tenant=layout.tenant_of(net), host=f"host{host}")  # fmt: skip

    await asyncio.gather(*(writer(w) for w in range(writers)))
    return count / (time.perf_counter() - started)


async def steady(urls: list[str], layout: Layout, agent_hosts: int, count: int, rate: float) -> tuple[float, dict]:
    """``count`` creates at ``rate``/s, open loop (a create does not wait for the previous one) up to 64
    in flight; the send time (in the ID) is taken when the request goes out."""
    placements = layout.placements()[layout.endpoints - count :]
    sent: dict[str, int] = {}
    failed: list[str] = []
    clients = [NetmasterClient(u) for u in urls]
    in_flight = asyncio.Semaphore(64)  # httpx's pool slows down with thousands of queued requests

    async def create(seq: int, host: int, net: int) -> None:
        async with in_flight:
            key = steady_id(seq, host, net, time.time())
            try:
                await clients[seq % len(clients)].create_endpoint(
                    key, network=layout.network_name(net), tenant=layout.tenant_of(net), host=f"host{host}"
                )
            except NetmasterError as exc:  # an overloaded netmaster: counted, not fatal
                failed.append(str(exc))
            else:
                sent[key] = net

    started = time.perf_counter()
    tasks = []
    for seq, (host, net) in enumerate(placements):
        host = host % agent_hosts  # steady endpoints land on hosts that run an agent
        await asyncio.sleep(max(0.0, started + seq / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(create(seq, host, net)))
    await asyncio.gather(*tasks)
    achieved = count / (time.perf_counter() - started)
    for c in clients:
        await c.close()
    if failed:
        print(f"  steady: {len(failed)} of {count} creates failed, e.g. {failed[0]}")
    return achieved, sent


async def run_round(cluster: EtcdCluster, nms_count: int, args: argparse.Namespace) -> None:
    await asyncio.to_thread(cluster.wipe)
    layout = Layout(args.tenants, args.networks, args.endpoints, args.per_host, args.seed, args.steady)
    agents = min(args.agents, layout.hosts)
    span = ["--agent-span", args.agent_span, "--watch-flush", str(args.watch_flush)]
    nms = [await asyncio.to_thread(NetmasterProcess.spawn, cluster.url, args=span) for _ in range(nms_count)]
    urls = [nm.url for nm in nms]
    procs: list[asyncio.subprocess.Process] = []
    try:
        async with NetmasterClient(urls[0]) as admin:
            await create_topology(admin, layout)
        pre = layout.endpoints - args.steady
        t0 = time.perf_counter()
        pre_rate = await preload(urls, layout, pre, args.writers)
        print(f"  preload: {pre} endpoints in {time.perf_counter() - t0:.0f} s ({pre_rate:.0f} creates/s,"
              f" {args.writers} clients)")  # fmt: skip
        t0 = time.perf_counter()
        spec = json.dumps({"tenants": layout.tenants, "networks": layout.networks, "endpoints": layout.endpoints,
                           "per_host": layout.per_host, "seed": layout.seed, "steady": layout.steady})  # fmt: skip
        for p in range(args.agent_procs):
            hosts = list(range(p, agents, args.agent_procs))
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--agent-worker", json.dumps(urls), json.dumps(hosts), spec,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO, limit=2**30))  # fmt: skip
        for p in procs:
            line = await asyncio.wait_for(p.stdout.readline(), 1800)  # type: ignore[union-attr]
            assert line.strip() == b"ready", line
        print(f"  {agents} agents snapshotted and watching in {time.perf_counter() - t0:.0f} s"
              f" ({args.agent_procs} processes)")  # fmt: skip
        rss_before = [rss_mib(nm.process.pid) for nm in nms]
        watched = {"netmaster": [nm.process.pid for nm in nms], "agents": [p.pid for p in procs],
                   "etcd": [m.proc.pid for m in cluster.members if m.proc], "bench driver": [os.getpid()]}  # fmt: skip
        cpu_before = {k: sum(cpu_seconds(p) for p in pids) for k, pids in watched.items()}
        load = [load_average()]
        achieved, sent = await steady(urls, layout, agents, args.steady, args.rate)
        load.append(load_average())
        await asyncio.sleep(args.drain)
        cpu = {k: sum(cpu_seconds(p) for p in pids) - cpu_before[k] for k, pids in watched.items()}
        rss_after = [rss_mib(nm.process.pid) for nm in nms]
        for p in procs:
            p.stdin.write(b"stop\n")  # type: ignore[union-attr]
            await p.stdin.drain()  # type: ignore[union-attr]
        results = [json.loads(await asyncio.wait_for(p.stdout.readline(), 120)) for p in procs]  # type: ignore[union-attr]
        report(layout, agents, sent, achieved, results, args.rate, rss_before, rss_after)
        per = max(1, len(sent))
        print(f"  CPU during steady + drain ({len(sent)} creates; load average {load[0]} -> {load[1]}): "
              + ", ".join(f"{k} {v:.1f} s ({v / per * 1000:.2f} ms per create)" for k, v in cpu.items()))  # fmt: skip
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
            await p.wait()
        for nm in nms:
            await asyncio.to_thread(nm.stop)


def report(layout: Layout, agents: int, sent: dict[str, int], achieved: float, results: list[dict], rate: float,
           rss_before: list[float], rss_after: list[float]) -> None:  # fmt: skip
    interest = layout.interest()
    snap_bytes = [a["snapshot_bytes"] for r in results for a in r["agents"].values()]
    snap_objs = [a["snapshot_objects"] for r in results for a in r["agents"].values()]
    pairs: list[float] = []
    per_ep: dict[str, list[float]] = {}
    for r in results:
        for key, lats in r["lat"].items():
            pairs.extend(lats)
            per_ep.setdefault(key, []).extend(lats)
    expected = {k: sum(1 for h in range(agents) if net in interest.get(h, set())) for k, net in sent.items()}
    complete = [max(per_ep[k]) for k, n in expected.items() if n and len(per_ep.get(k, [])) >= n]
    missing = sum(n - len(per_ep.get(k, [])) for k, n in expected.items() if len(per_ep.get(k, [])) < n)
    delivered_all = sum(r["all"] for r in results)
    print(f"  snapshot per agent: {statistics_line(snap_bytes, 'bytes')}; objects {min(snap_objs)}..{max(snap_objs)}")
    print(
        f"  steady: {len(sent)} creates at {achieved:.0f}/s (asked {rate:g}/s); interested agents per endpoint"
        f" mean {sum(expected.values()) / max(1, len(expected)):.0f} of {agents};"
        f" events delivered to all agents: {delivered_all} ({delivered_all / max(1, len(sent)):.0f} per create)"
    )
    print(
        f"  create -> interested agent: p50 {pct(pairs, 0.5) * 1000:7.1f} ms  p99 {pct(pairs, 0.99) * 1000:7.1f} ms"
        f"  ({len(pairs)} deliveries, {missing} missing)"
    )
    print(
        f"  create -> last interested agent: p50 {pct(complete, 0.5) * 1000:7.1f} ms"
        f"  p99 {pct(complete, 0.99) * 1000:7.1f} ms"
    )
    print(f"  re-lists (410, buffer overflow): {sum(r['relists'] for r in results)}")
    print(
        "  netmaster RSS MiB before/after steady: "
        + ", ".join(f"{b:.0f}/{a:.0f}" for b, a in zip(rss_before, rss_after, strict=True))
    )


def statistics_line(values: list[int], unit: str) -> str:
    return f"min {min(values)} p50 {pct([float(v) for v in values], 0.5):.0f} max {max(values)} {unit}"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-etcd-") as tmp:
        cluster = EtcdCluster(Path(tmp), 1, timing=None).start(timeout=30)
        try:
            layout = Layout(args.tenants, args.networks, args.endpoints, args.per_host, args.seed)
            print(f"etcd 1 member; {os.cpu_count()} CPUs (shared); {args.tenants} tenants, {args.networks} networks,"
                  f" {args.endpoints} endpoints, {args.per_host} per host ({layout.hosts} hosts),"
                  f" {min(args.agents, layout.hosts)} agents; netmaster --agent-span {args.agent_span}"
                  f" --watch-flush {args.watch_flush:g}")  # fmt: skip
            for n in args.netmasters:
                print(f"{n} netmaster(s):")
                await run_round(cluster, n, args)
        finally:
            cluster.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--agent-worker":
        _, _, urls_json, hosts_json, spec = sys.argv
        asyncio.run(agent_process(json.loads(urls_json), json.loads(hosts_json), Layout(**json.loads(spec))))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000, help="simulated agents (hosts that run one)")
    parser.add_argument("--endpoints", type=int, default=50000, help="endpoints at the end of the run")
    parser.add_argument("--steady", type=int, default=6000, help="of those, created during the steady phase")
    parser.add_argument("--rate", type=float, default=200, help="steady creates per second")
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--per-host", type=int, default=20, help="endpoints per host")
    parser.add_argument("--writers", type=int, default=16, help="clients creating the preloaded endpoints")
    parser.add_argument("--agent-procs", type=int, default=4, help="processes the agents are spread over")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to wait for deliveries after the last create")
    parser.add_argument("--netmasters", type=int, nargs="+", default=[1, 2], help="rounds to run (default 1 2)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--watch-flush", type=float, default=0.05,
                        help="netmaster's --watch-flush (the figures in docs/performance.md: 0.05)")  # fmt: skip
    parser.add_argument("--agent-span", choices=("network", "tenant"), default="network",
                        help="netmaster's --agent-span (the figures in docs/performance.md: network)")
    asyncio.run(main(parser.parse_args()))
