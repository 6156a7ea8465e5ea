"""The watch fan-out: every watcher fed from one store watch, and a slow watcher's memory is bounded.

A watcher that never reads must not make netmaster buffer what it does not take: once its buffer
(``--watch-buffer``) is full it is cut off, and when it finally reads it finds a 410 line telling it
to re-list. A watcher that keeps reading gets every event meanwhile.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import httpx

from testbed.netmaster import NetmasterProcess
from testbed.waiting import eventually

BUFFER = 256 * 1024
LABEL = "x" * 100_000  # ~100 kB per endpoint event
ROUNDS = 300  # ~30 MB of events: 120 times the buffer, nearly 4 times the shared ring of recent events (8 MiB)


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def _metric(http: httpx.Client, name: str) -> float:
    text = http.get("/metrics").text
    match = re.search(rf"^{name}(?:_total)? (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def _churn(http: httpx.Client, prefix: str, rounds: int = ROUNDS) -> int:
    """Create and delete big endpoints; the revision of the last write."""
    revision = 0
    for i in range(rounds):
        body = {"endpointID": f"{prefix}{i}", "networkName": "net", "labels": {"big": LABEL}}
        assert http.post("/api/v1/endpoints/", json=body).status_code == 200
        response = http.delete(f"/api/v1/endpoints/{prefix}{i}/")
        assert response.status_code == 200
        revision = int(response.headers["X-Revision"])
    return revision


class Reader(threading.Thread):
    """A watcher that keeps reading; remembers the highest revision seen."""

    def __init__(self, url: str, since: int) -> None:
        super().__init__(daemon=True)
        self.url, self.since, self.seen = url, since, 0
        self.errors: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(base_url=self.url, timeout=None) as http,
            http.stream("GET", f"/api/v1/watch?since={self.since}") as response,
        ):
            for line in response.iter_lines():
                event = json.loads(line) if line else {}
                if event.get("type") == "error":
                    self.errors.append(event)
                    return
                self.seen = max(self.seen, event.get("revision", 0))
                if self.stop.is_set():
                    return


def test_a_watcher_that_never_reads_is_cut_off_and_memory_stays_bounded(tmp_path: Path) -> None:
    # SQLite: the store's own event history lives in the file, not in netmaster's memory (memory:// keeps
    # 10,000 events in RAM, which would be counted here).
    with (
        NetmasterProcess.start(
            f"sqlite://{tmp_path / 'state.db'}", args=["--watch-buffer", str(BUFFER)], log_path=tmp_path / "nm.log"
        ) as nm,
        httpx.Client(base_url=nm.url, timeout=30) as http,
    ):
        body = {"encap": "vxlan", "subnet": "10.9.0.0/16"}
        assert http.post("/api/v1/networks/default:net/", json=body).status_code == 200
        assert nm.process is not None
        # The shared ring of recent events (8 MiB) fills up before the baseline is taken: from then on
        # it replaces what it holds, so what grows is what the watchers hold.
        _churn(http, "warm", rounds=100)
        start = int(http.get("/healthz").json()["revision"])

        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((nm.host, nm.port))
        stalled.sendall(f"GET /api/v1/watch?since={start} HTTP/1.1\r\nHost: nm\r\n\r\n".encode())
        reader = Reader(nm.url, start)
        reader.start()
        eventually(lambda: _metric(http, "netmaster_watchers") == 2, what="both watchers registered")
        before = _rss(nm.process.pid)

        last = _churn(http, "ep")

        eventually(lambda: reader.seen >= last or reader.errors, what="the reading watcher got every event")
        assert not reader.errors
        grown = _rss(nm.process.pid) - before
        assert grown < 6 * 1024 * 1024, f"netmaster grew by {grown} bytes for {ROUNDS * len(LABEL)} bytes of events"
        assert _metric(http, "netmaster_watch_overflows") == 1, "the stalled watcher was cut off"
        assert _metric(http, "netmaster_watchers") == 1
        assert _metric(http, "netmaster_watch_buffered_bytes") <= BUFFER

        # When the stalled watcher reads at last, its stream ends with the instruction to re-list.
        stalled.settimeout(10)
        received = b""
        while b'"status":410' not in received:
            chunk = stalled.recv(1 << 16)
            assert chunk, "stream closed without the 410 line"
            received += chunk
        stalled.close()
        reader.stop.set()


def test_watchers_share_events_and_resume_from_memory(tmp_path: Path) -> None:
    """Two watchers from different revisions get the same lines; a resume inside the ring replays."""
    with (
        NetmasterProcess.start("memory://", log_path=tmp_path / "nm.log") as nm,
        httpx.Client(base_url=nm.url, timeout=30) as http,
    ):
        first = int(http.post("/api/v1/tenants/w1/", json={}).headers["X-Revision"])
        second = int(http.post("/api/v1/tenants/w2/", json={}).headers["X-Revision"])
        seen: dict[int, list[dict]] = {}
        for since in (first - 1, first):
            with http.stream("GET", f"/api/v1/watch?since={since}") as response:
                lines = []
                for line in response.iter_lines():
                    event = json.loads(line)
                    if event.get("kind") == "tenant":
                        lines.append(event)
                    if event["revision"] >= second:
                        break
                seen[since] = lines
        assert [(e["key"], e["revision"]) for e in seen[first - 1]] == [("w1", first), ("w2", second)]
        assert seen[first] == seen[first - 1][1:]
