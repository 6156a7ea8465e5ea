"""One launcher for the project's HTTP daemons as real processes: start, wait until they answer, stop.

netmaster and aci-gw differ only in their command line and in the URL that says "serving"
(:mod:`testbed.netmaster`, :mod:`testbed.aci_gw`); everything about the process lives here once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import httpx

REPO = Path(__file__).resolve().parent.parent
# The environment of a testbed helper run as a module inside a namespace (``python_in_ns``).
CHILD_ENV = {"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def python_in_ns(ns: str, module: str, *args: str) -> list[str]:
    """The command running ``python -m module args`` (this interpreter) in network namespace *ns*;
    run it with ``env=CHILD_ENV, cwd=REPO``."""
    import sys

    return ["ip", "netns", "exec", ns, sys.executable, "-m", module, *args]


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Signal *process* and reap it; SIGKILL when it has not exited after *grace* seconds."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class ServiceProcess:
    """A daemon on ``host:port``; ``run()`` (re)starts it on that same port, so clients keep their URL.

    An instance is a context manager that stops the process on exit.

    Subclasses say how it starts (:meth:`command`) and how readiness is seen (``ready_path``,
    ``ready_statuses``): a path that answers without credentials or a backend once the process serves.
    """

    name = "service"
    ready_path = "/"
    ready_statuses: tuple[int, ...] = (200,)

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.env = dict(env or {})
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def run(self, timeout: float = 20.0) -> None:
        """Start the process (again) and wait until it answers; its output goes to ``log_path``."""
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        # The checkout first on the path: the child runs this tree's code even where it is not installed.
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, **self.env, "PYTHONPATH": path}
        self.process = subprocess.Popen(list(self.command()), stdout=out, stderr=subprocess.STDOUT, env=env)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        assert self.process is not None, "run() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} (log: {self.log_path})")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code in self.ready_statuses:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s (log: {self.log_path})")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the process and reap it (SIGKILL after 10 s); a stopped process stays stopped."""
        if self.process is not None:
            stop_process(self.process, sig)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def restart(self, timeout: float = 20.0) -> None:
        self.stop()
        self.run(timeout)


def spawn_until_printed(command: Sequence[str], log: Path, ready: str, what: str, timeout: float = 10.0,
                        **popen: Any) -> subprocess.Popen[bytes]:
    """Start *command* with its output (stdout and stderr) in the file *log* and wait until *ready*
    appears there (a sniffer's "listening" line); a child that exits or stays silent is killed and
    reported as RuntimeError("<what> did not start: <its output>")."""
    with open(log, "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, **popen)
    deadline = time.monotonic() + timeout
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(5)
            raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')}")
        time.sleep(0.05)
    return proc
