"""Start an apic_mock for tests, benchmarks and the demo, and read the APIC as its administrator does.

Usage::

    from testbed.apic import ApicMock

    with ApicMock.start() as apic:              # HTTPS on a free 127.0.0.1 port
        apic.url, apic.ca_file, apic.username, apic.password
        apic.admin.stats()["writes"]             # APIC writes so far
        apic.admin.inject_fault("error", status=503, count=2)
        apic.admin.reset()

``tests/conftest.py`` builds the ``apic_mock`` fixture on it (a shared server, reset before each
test). The server runs in a background thread by default; ``subprocess=True`` runs the real
``apic-mock`` command instead (for restart tests). Only 127.0.0.1 is used, on ports the OS picks,
so parallel runs never collide.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess as sp
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from apic_mock import tls
from apic_mock.serve import build_server, listening_socket
from apic_mock.service import ApicService, Settings
from testbed.process import stop_process

START_TIMEOUT = 20.0


def http_client(base_url: str, verify: ssl.SSLContext | bool) -> httpx.Client:
    """An httpx client with TCP_NODELAY.

    httpx writes request headers and body in separate sends and leaves Nagle on, so every POST
    would wait ~40 ms for the server's delayed ACK; ``requests`` (urllib3) sets TCP_NODELAY itself.
    """
    transport = httpx.HTTPTransport(
        verify=verify, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    return httpx.Client(base_url=base_url, transport=transport, timeout=30)


class AdminClient:
    """The ``/mock/`` admin API as methods."""

    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, path, **kw)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/mock/health")

    def reset(self) -> dict[str, Any]:
        """Tree back to initial objects and seeds; faults cleared; stats zeroed (sessions kept)."""
        return self._call("POST", "/mock/reset")

    def dump(self) -> dict[str, Any]:
        return self._call("GET", "/mock/dump")

    def stats(self, log: bool = True) -> dict[str, Any]:
        """Request counters: ``total``, ``writes``, ``writes_ok``, ``by_method``, ``by_path``, ``by_status``,
        ``log``."""
        return self._call("GET", "/mock/stats", params={} if log else {"log": "0"})

    def reset_stats(self) -> None:
        self._call("POST", "/mock/stats/reset")

    def inject_fault(self, kind: str, **spec: Any) -> dict[str, Any]:
        """Add a fault rule: kind ``latency`` (delay_ms), ``error`` (status) or ``reset``; optional
        ``count``, ``share``, ``path`` (regex), ``method``, ``seed``."""
        return self._call("POST", "/mock/faults", json={"kind": kind, **spec})

    def clear_faults(self) -> None:
        self._call("DELETE", "/mock/faults")

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mock/faults")["faults"]

    def expire_tokens(self, user: str | None = None) -> int:
        """Make every token (or one user's) time out now; returns how many."""
        return self._call("POST", "/mock/tokens/expire", json={"user": user} if user else {})["expired"]

    def seed(self, items: list[dict[str, Any]] | dict[str, Any]) -> int:
        """Load objects with fabric privileges (fabric nodes, endpoints, anything read-only)."""
        return self._call("POST", "/mock/seed", json=items)["changes"]

    def add_endpoint(
        self, epg: str, mac: str, ip: str = "0.0.0.0", encap: str = "unknown", path: str = ""
    ) -> dict[str, Any]:
        """Learn an fvCEp under ``epg`` as the fabric would."""
        return self._call(
            "POST", "/mock/endpoints", json={"epg": epg, "mac": mac, "ip": ip, "encap": encap, "path": path}
        )

    def remove(self, dn: str) -> int:
        """Remove any object (endpoint ageing, node decommission)."""
        return self._call("DELETE", "/mock/objects", params={"dn": dn})["removed"]

    def subscriptions(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mock/subscriptions")["subscriptions"]

    def expire_subscriptions(self) -> int:
        """Make every subscription time out now, as unrefreshed ones do; returns how many."""
        return self._call("POST", "/mock/subscriptions/expire")["expired"]


class ApicMock:
    """A running mock: ``url``, ``ca_file`` (None over HTTP), ``username``, ``password``, ``admin``."""

    def __init__(
        self,
        url: str,
        ca_file: str | None,
        username: str,
        password: str,
        service: ApicService | None,
        stop: Any,
        workdir: Path,
    ) -> None:
        self.url = url
        self.ca_file = ca_file
        self.username = username
        self.password = password
        self.service = service  # in-process mode only
        self.process: sp.Popen[bytes] | None = None  # subprocess mode only
        self.workdir = workdir
        self._stop = stop
        self._server: _InProcessServer | None = None
        self.admin = AdminClient(http_client(url, self.ssl_context() or False))

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT``, the form clients such as aciClient take."""
        return self.url.split("://", 1)[1]

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that trusts the mock's CA (None over HTTP)."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None

    def client(self, login: bool = True) -> httpx.Client:
        """An httpx client for the APIC API, logged in as the default user unless ``login=False``."""
        client = http_client(self.url, self.ssl_context() or False)
        if login:
            # Log in with a one-off request so the returned client is still usable in a ``with``.
            body = {"aaaUser": {"attributes": {"name": self.username, "pwd": self.password}}}
            with http_client(self.url, self.ssl_context() or False) as once:
                response = once.post("/api/aaaLogin.json", json=body)
            response.raise_for_status()
            client.cookies.update(response.cookies)
        return client

    def stop(self) -> None:
        self.admin.http.close()
        self._stop()

    def restart(self) -> None:
        """Stop the (in-process) mock and start a new one on the same port and certificate, as an APIC
        reboot looks to clients: sessions, subscriptions and websockets are gone; the objects are kept
        when the mock was started with a ``state`` file."""
        if self._server is None:
            raise RuntimeError("restart() is for in-process mocks")
        self._server.restart()
        self.service = self._server.service

    def __enter__(self) -> ApicMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def start(
        cls,
        http: bool = False,
        users: dict[str, str] | None = None,
        seed: list[dict[str, Any]] | str | Path | None = None,
        state: str | Path | None = None,
        demo_fabric: bool = True,
        refresh_timeout: int = 600,
        accept_unsigned: bool = False,
        subprocess: bool = False,
        extra_args: list[str] | None = None,
    ) -> ApicMock:
        """Start a mock on a free port and wait until it answers.

        ``users`` defaults to ``{"admin": "password"}`` (the first one is ``username``/``password``);
        ``seed`` is a list of MOs or a JSON file in APIC's envelope; ``state`` a persistence file.
        """
        users = users or {"admin": "password"}
        workdir = Path(tempfile.mkdtemp(prefix="apic-mock-"))
        seeds: list[Path | list[dict[str, Any]]] = []
        if isinstance(seed, str | Path):
            seeds.append(Path(seed))
        elif seed is not None:
            seeds.append(seed)
        if subprocess:
            return cls._start_process(
                workdir,
                http,
                users,
                seeds,
                state,
                demo_fabric,
                refresh_timeout,
                accept_unsigned,
                extra_args or [],
            )
        settings = Settings(
            users=users,
            refresh_timeout=refresh_timeout,
            accept_unsigned=accept_unsigned,
            state_file=Path(state) if state else None,
            seeds=seeds,
            demo_fabric=demo_fabric,
        )
        ca_file = cert = key = None
        if not http:
            files = tls.generate(workdir)
            cert, key, ca_file = str(files.cert), str(files.key), str(files.ca)
        server = _InProcessServer(settings, cert, key)
        name, pwd = next(iter(users.items()))
        scheme = "http" if http else "https"
        mock = cls(f"{scheme}://127.0.0.1:{server.port}", ca_file, name, pwd, server.service, server.stop, workdir)
        mock._server = server
        return mock

    @classmethod
    def _start_process(
        cls,
        workdir: Path,
        http: bool,
        users: dict[str, str],
        seeds: list[Path | list[dict[str, Any]]],
        state: str | Path | None,
        demo_fabric: bool,
        refresh_timeout: int,
        accept_unsigned: bool,
        extra: list[str],
    ) -> ApicMock:
        port_file = workdir / "port"
        ca_file = workdir / "ca.pem"
        args = [
            sys.executable,
            "-m",
            "apic_mock.cli",
            "--listen",
            "127.0.0.1:0",
            "--port-file",
            str(port_file),
            "--refresh-timeout",
            str(refresh_timeout),
            "--log-level",
            "warning",
        ]
        args += ["--http"] if http else ["--ca-out", str(ca_file)]
        for name, pwd in users.items():
            args += ["--user", f"{name}:{pwd}"]
        for i, seed in enumerate(seeds):
            if not isinstance(seed, Path):
                path = workdir / f"seed{i}.json"
                path.write_text(json.dumps({"imdata": seed}))
                seed = path
            args += ["--seed", str(seed)]
        if state:
            args += ["--state", str(state)]
        if demo_fabric:
            args.append("--demo-fabric")
        if accept_unsigned:
            args.append("--accept-unsigned")
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        # Both streams to the log file: a mock that outlives its starter (the demo's --keep) must not hold
        # the starter's stdout open.
        log = open(workdir / "stderr.log", "wb")  # noqa: SIM115 - owned by the child
        proc = sp.Popen([*args, *extra], env=env, stdout=log, stderr=log, stdin=sp.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"apic-mock exited: {(workdir / 'stderr.log').read_text()[-2000:]}")
            time.sleep(0.02)
        port = int(port_file.read_text())
        scheme = "http" if http else "https"
        url = f"{scheme}://127.0.0.1:{port}"
        ctx: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if not http else False
        while True:
            try:
                httpx.get(f"{url}/mock/health", verify=ctx, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError("apic-mock did not become ready") from None
                time.sleep(0.05)

        def stop() -> None:
            stop_process(proc)

        name, pwd = next(iter(users.items()))
        mock = cls(url, None if http else str(ca_file), name, pwd, None, stop, workdir)
        mock.process = proc
        return mock


class _InProcessServer:
    """An apic_mock service served by uvicorn in a thread, restartable on the same port."""

    def __init__(self, settings: Settings, cert: str | None, key: str | None) -> None:
        self.settings, self.cert, self.key = settings, cert, key
        self.port = 0
        self._serve()

    def _serve(self) -> None:
        self.service = ApicService(self.settings)
        sock = listening_socket("127.0.0.1", self.port)
        self.port = sock.getsockname()[1]
        server = build_server(self.service, certfile=self.cert, keyfile=self.key, log_level="warning")
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"apic-mock-{self.port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("apic_mock did not start")
            time.sleep(0.01)
        self._server, self._thread, self._sock = server, thread, sock

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def restart(self) -> None:
        self.stop()
        self._serve()


def flatten_subtree(imdata: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, str]]]:
    """An APIC answer with ``rsp-subtree=full`` as ``{dn: (class, attributes)}`` (children get their DN
    from the parent's and their ``rn``), the way an operator reads a tenant."""
    out: dict[str, tuple[str, dict[str, str]]] = {}

    def walk(item: dict[str, Any], parent: str) -> None:
        ((cls, body),) = item.items()
        attrs = body["attributes"]
        here = attrs.get("dn") or f"{parent}/{attrs['rn']}"
        out[here] = (cls, attrs)
        for child in body.get("children", []):
            walk(child, here)

    for item in imdata:
        walk(item, "")
    return out


class Apic:
    """The APIC as its administrator sees it: configure outside Contiv, read subtrees back."""

    def __init__(self, mock: ApicMock) -> None:
        self.mock = mock
        self.http = mock.client()

    def post(self, dn: str, body: dict[str, Any]) -> None:
        response = self.http.post(f"/api/mo/{dn}.json", json=body)
        assert response.status_code == 200, response.text

    def delete(self, dn: str) -> None:
        response = self.http.delete(f"/api/mo/{dn}.json")
        assert response.status_code == 200, response.text

    def tree(self, dn: str) -> dict[str, tuple[str, dict[str, str]]]:
        """Every object under ``dn`` (included) as ``{dn: (class, attributes)}``; empty when absent."""
        response = self.http.get(f"/api/mo/{dn}.json", params={"rsp-subtree": "full"})
        assert response.status_code == 200, response.text
        return flatten_subtree(response.json()["imdata"])
