"""Start a real ``aci-gw`` process for tests, benchmarks and demos, on a free port, and stop it.

The gateway is configured as an operator would (Contiv's environment variables), against an APIC
such as ``apic_mock.testing.ApicMock``::

    with AciGwProcess.start(apic_env(apic)) as gw:
        httpx.post(gw.url + "/createAppProf", json=payload)

``restart()`` keeps the port, so a client configured with ``gw.url`` reconnects to the new process
(the outage tests stop and restart it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apic_env(apic: Any, **extra: str) -> dict[str, str]:
    """Contiv's variables for an ``ApicMock`` (TLS verified against its CA), plus overrides."""
    env = {
        "APIC_URL": apic.url,
        "APIC_USERNAME": apic.username,
        "APIC_PASSWORD": apic.password,
        "APIC_CA_BUNDLE": apic.ca_file or "",
        "APIC_SDK": "rest",
        "APIC_RETRIES": "2",
        "APIC_BACKOFF": "0.05",
        "APIC_TIMEOUT": "10",
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


class AciGwProcess:
    def __init__(self, env: Mapping[str, str], port: int, log_path: Path | None, token: str | None) -> None:
        self.env = dict(env)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    @contextmanager
    def start(
        cls,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        log_path: Path | None = None,
        token: str | None = None,
        timeout: float = 20.0,
    ) -> Iterator[AciGwProcess]:
        gw = cls.spawn(env, port=port, log_path=log_path, token=token, timeout=timeout)
        try:
            yield gw
        finally:
            gw.stop()

    @classmethod
    def spawn(
        cls,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        log_path: Path | None = None,
        token: str | None = None,
        timeout: float = 20.0,
    ) -> AciGwProcess:
        gw = cls(env, port or _free_port(), log_path, token)
        gw.run(timeout)
        return gw

    def run(self, timeout: float = 20.0) -> None:
        """Start the process (again) on this port and wait until it answers."""
        cmd = [sys.executable, "-m", "aci_gw", "--listen-url", f"127.0.0.1:{self.port}"]
        if self.token:
            cmd += ["--token", self.token]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, **self.env, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aci-gw exited with {self.process.returncode} (log: {self.log_path})")
            try:
                # /metrics answers without the APIC or a token: the process is up and serving.
                if httpx.get(self.url + "/metrics", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"aci-gw did not become ready in {timeout}s (log: {self.log_path})")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.run()
