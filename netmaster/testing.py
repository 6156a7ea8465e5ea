"""Start a real netmaster process for tests and demos, on a free port, and stop it cleanly.

Tests of netctl, agents and the ACI integration all need a running netmaster; this keeps that in
one place: ``with NetmasterProcess.start() as nm: httpx.get(nm.url + "/version")``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class NetmasterProcess:
    url: str
    store_url: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @classmethod
    @contextmanager
    def start(
        cls,
        store_url: str = "memory://",
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 20.0,
        host: str = "127.0.0.1",
    ) -> Iterator[NetmasterProcess]:
        nm = cls.spawn(store_url, port=port, args=args, log_path=log_path, env=env, timeout=timeout, host=host)
        try:
            yield nm
        finally:
            nm.stop()

    @classmethod
    def spawn(
        cls,
        store_url: str = "memory://",
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 20.0,
        host: str = "127.0.0.1",
    ) -> NetmasterProcess:
        """*host*: the address to listen on (agents in other network namespaces need a routable one)."""
        port = port or free_port(host)
        cmd = [
            sys.executable,
            "-m",
            "netmaster",
            "--listen-url",
            f"{host}:{port}",
            "--cluster-store",
            store_url,
            *args,
        ]
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        nm = cls(f"http://{host}:{port}", store_url, proc, log_path)
        nm.wait_ready(timeout)
        return nm

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"netmaster exited with {self.process.returncode} (log: {self.log_path})")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"netmaster did not become ready in {timeout}s (log: {self.log_path})")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
