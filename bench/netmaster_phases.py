"""Where an object create's time goes on etcd: per-phase timestamps inside a real netmaster process.

Starts a scratch etcd (testbed.etcd) and a netmaster on it whose request path is wrapped with timers
(this script re-runs itself as the netmaster with ``--child``; nothing of netmaster is changed), then
creates ``--objects`` tenants, each with a network, an EPG, a policy and a rule (bench/netmaster_api's
bodies), one request at a time, ``--pause`` seconds apart (0: back to back; the side-by-side bench's
interleaving leaves each target idle a few ms between its requests). Prints per kind the p50 of:

* ``client``: the whole request as the client sees it;
* ``server``: from the request reaching netmaster's middleware to the last byte sent;
* ``body``, ``parse``: reading the JSON body, the type's parse/validation;
* ``apply``: the object service's create-or-update (handler checks and the transaction);
* ``txn``: the store transaction (one etcd Txn), and ``echo`` the part of it spent applying watch
  events (the write's own echo) to the cache while the Txn response was pending;
* ``wait``: reads waiting for the cache to reach a revision this process wrote (read-your-writes),
  with how many requests waited at all;
* ``encode``: the JSON response.

``--clients``: also time etcd round trips from Python on one etcd started with ``--enable-v2``, back to
back and after the pause, with a watch on ``/contiv/`` open as netmaster's cache has: grpc.aio Range
and Txn (what netmaster uses; one put, and a tenant create's two compares and two puts) next to a v2
GET and PUT on a plain asyncio HTTP/1.1 connection (the API Contiv's netmaster writes with).

Nothing is asserted; recorded figures are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

PHASES = ("client", "server", "body", "parse", "apply", "txn", "echo", "wait", "encode")
KINDS = {"tenants": "tenant", "networks": "network", "endpointGroups": "EPG", "policys": "policy", "rules": "rule"}


def child(argv: list[str]) -> int:
    """Run netmaster with timers around the request path; one JSON line per write to $PHASES_OUT."""
    from netmaster.api import app as app_module
    from netmaster.daemon import main
    from netmaster.model import catalog
    from netmaster.objects import service
    from netmaster.store import cache

    out = open(os.environ["PHASES_OUT"], "a", buffering=1)  # noqa: SIM115 - open for the process's life
    current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("phases", default=None)
    applied = [0.0]  # seconds spent applying watch events to the cache, ever

    def add(phase: str, seconds: float) -> None:
        record = current.get()
        if record is not None:
            record[phase] = record.get(phase, 0.0) + seconds

    def timed_async(owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                add(phase, time.perf_counter() - started)

        setattr(owner, name, wrapper)

    def timed_sync(owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(phase, time.perf_counter() - started)

        setattr(owner, name, wrapper)

    guard = app_module.GuardMiddleware.__call__

    async def guarded(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            await guard(self, scope, receive, send)
            return
        record: dict[str, Any] = {"path": scope["path"]}
        current.set(record)
        started = time.perf_counter()
        await guard(self, scope, receive, send)
        record["server"] = time.perf_counter() - started
        out.write(json.dumps(record) + "\n")

    app_module.GuardMiddleware.__call__ = guarded  # type: ignore[method-assign]
    timed_async(app_module, "read_json", "body")
    timed_sync(catalog.ObjectType, "parse", "parse")
    timed_async(service.ObjectService, "apply", "apply")
    timed_sync(app_module, "_json", "encode")

    apply_event = cache.CachedStore._apply

    def applying(self: Any, event: Any) -> None:
        started = time.perf_counter()
        apply_event(self, event)
        applied[0] += time.perf_counter() - started

    cache.CachedStore._apply = applying  # type: ignore[method-assign]
    txn = cache.CachedStore.txn

    async def timed_txn(self: Any, compares: Any, ops: Any) -> Any:
        started, echo = time.perf_counter(), applied[0]
        result = await txn(self, compares, ops)
        add("txn", time.perf_counter() - started)
        add("echo", applied[0] - echo)
        return result

    cache.CachedStore.txn = timed_txn  # type: ignore[method-assign]
    wait_for = cache.CachedStore.wait_for

    async def timed_wait(self: Any, revision: int) -> None:
        if self.at_revision >= revision:
            return await wait_for(self, revision)
        started = time.perf_counter()
        await wait_for(self, revision)
        add("wait", time.perf_counter() - started)
        add("waited", 1)

    cache.CachedStore.wait_for = timed_wait  # type: ignore[method-assign]
    return main(argv)


def phases(objects: int, pause: float) -> None:
    from netmaster_api import _bodies  # bench/ is on sys.path when this script runs

    from testbed.etcd import EtcdCluster
    from testbed.ports import free_port

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "phases.jsonl"
        etcd = EtcdCluster(Path(tmp) / "etcd", 1).start()
        port = free_port()
        listen = f"127.0.0.1:{port}"
        command = [sys.executable, __file__, "--child", "--listen-url", listen, "--cluster-store", etcd.url]
        proc = subprocess.Popen(command, env={**os.environ, "PHASES_OUT": str(out)}, stderr=subprocess.DEVNULL)
        client: dict[str, list[float]] = {}
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
            _wait_ready(http)
            for i in range(objects):
                for _, path, body in _bodies(i):
                    time.sleep(pause)
                    started = time.perf_counter()
                    response = http.post(path, json=body)
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
                    client.setdefault(path.split("/")[3], []).append(elapsed)
        finally:
            proc.terminate()
            proc.wait()
            etcd.stop()
        records = [json.loads(line) for line in out.read_text().splitlines()]
    print(f"p50 ms per phase, etcd, {objects} of each, pause {pause * 1000:.0f} ms, load {_load()}")
    print("  " + f"{'kind':<8}" + "".join(f"{p:>8}" for p in PHASES) + "  waited")
    for segment, kind in KINDS.items():
        rows = [r for r in records if r["path"].split("/")[3] == segment]
        rows = [{**r, "client": c} for r, c in zip(rows, client[segment], strict=True)]
        cells = "".join(f"{statistics.median(r.get(p, 0.0) for r in rows) * 1000:8.2f}" for p in PHASES)
        print(f"  {kind:<8}{cells}  {sum(1 for r in rows if r.get('waited'))}/{len(rows)}")


def _wait_ready(http: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("netmaster did not become ready")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _clients(url: str, pauses: tuple[float, ...], count: int) -> dict[tuple[float, str], float]:
    """p50 seconds of each kind of etcd round trip, for each pause between calls."""
    from netmaster.store.base import Compare, Put
    from netmaster.store.etcd import EtcdStore

    store = EtcdStore.from_url(url)
    hostport = url.split("://", 1)[1]
    host, port = hostport.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))

    async def http(method: str, path: str, data: bytes = b"") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {len(data)}\r\n"
        writer.write(f"{head}Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode() + data)
        header = await reader.readuntil(b"\r\n\r\n")
        length = next(int(x.split(b":")[1]) for x in header.split(b"\r\n") if x.lower().startswith(b"content-length"))
        return await reader.readexactly(length)

    value = "v" * 300
    generation = [0, 0]  # the generation key's mod_revision (what the next commit compares), objects made

    async def tenant_shaped(_: int) -> None:
        """A tenant create's transaction: the object absent, the generation key unchanged; both written."""
        i = generation[1] = generation[1] + 1
        compares = [Compare(f"/contiv/obj/b/{i}", 0), Compare("/contiv/gen/b", generation[0])]
        result = await store.txn(compares, [Put("/contiv/gen/b", str(i)), Put(f"/contiv/obj/b/{i}", value)])
        if not result.succeeded:
            raise SystemExit(f"tenant-shaped transaction {i} refused: {result.failed_keys}")
        generation[0] = result.revision

    calls: dict[str, Callable[[int], Awaitable[Any]]] = {
        "grpc.aio Range (revision)": lambda i: store.revision(),
        "grpc.aio Txn, one put": lambda i: store.txn([], [Put(f"/contiv/bench/{i}", value)]),
        "grpc.aio Txn, a tenant's": tenant_shaped,
        "v2 GET over HTTP/1.1": lambda i: http("GET", f"/v2/keys/bench/{i}"),
        "v2 PUT over HTTP/1.1": lambda i: http("PUT", f"/v2/keys/bench/{i}", f"value={value}".encode()),
    }
    first = await store.revision()

    async def follow() -> None:  # a watch on /contiv/ as netmaster's cache has: etcd sends each write's echo
        async for _ in store.watch("/contiv/", first):
            pass

    watch = asyncio.create_task(follow())
    p50: dict[tuple[float, str], float] = {}
    try:
        for pause in pauses:
            for name, call in calls.items():
                samples = []
                for i in range(count):
                    await asyncio.sleep(pause)
                    started = time.perf_counter()
                    await call(i)
                    samples.append(time.perf_counter() - started)
                p50[(pause, name)] = statistics.median(samples)
    finally:
        watch.cancel()
        writer.close()
        await store.close()
    return p50


def clients(pause: float, count: int) -> None:
    from testbed.etcd import EtcdCluster

    with tempfile.TemporaryDirectory() as tmp:
        etcd = EtcdCluster(Path(tmp) / "etcd", 1, extra_args=["--enable-v2"]).start()
        try:
            print(f"etcd round trips from Python, p50 ms, {count} each, load {_load()}")
            for (gap, name), seconds in asyncio.run(_clients(etcd.url, (0.0, pause), count)).items():
                print(f"  pause {gap * 1000:3.0f} ms  {name:<30} {seconds * 1000:6.3f}")
        finally:
            etcd.stop()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100, help="tenants, each with a network, EPG, policy, rule")
    parser.add_argument("--pause", type=float, default=0.006, help="seconds between requests (default %(default)s)")
    parser.add_argument("--clients", action="store_true", help="also time etcd round trips by client and API")
    args = parser.parse_args()
    for pause in dict.fromkeys((0.0, args.pause)):
        phases(args.objects, pause)
    if args.clients:
        clients(args.pause, 300)


if __name__ == "__main__":
    main()
