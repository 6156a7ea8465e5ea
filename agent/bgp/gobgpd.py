"""gobgpd as a process of its own, which the agent starts or adopts.

The daemon runs in its own session (``start_new_session``), not as a child that dies with the agent:
an agent restart (a crash, SIGKILL, an upgrade) leaves the BGP sessions up, and the new agent adopts
the running daemon through its gRPC API instead of starting another (Contiv ran gobgp inside
netplugin, so each netplugin restart flapped its sessions). The API listens on the loopback of the
agent's namespace only.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from agent.bgp.gobgp import GobgpClient

LOG = logging.getLogger(__name__)

DEFAULT_API = "127.0.0.1:50051"


class GobgpdError(RuntimeError):
    """gobgpd is not installed, or did not answer after being started (the message says which)."""


class Gobgpd:
    def __init__(self, api: str, state_dir: Path, binary: str = "gobgpd", start_timeout: float = 10.0) -> None:
        self.api = api
        self.state_dir = state_dir
        self.binary = binary
        self.start_timeout = start_timeout
        self.pid = 0

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "gobgpd.pid"

    def adopt(self, timeout: float = 0.5) -> GobgpClient | None:
        """A client of the daemon already answering on the API address, or None."""
        client = GobgpClient(self.api)
        if client.ready(timeout):
            try:
                self.pid = int(self.pidfile.read_text())
            except (OSError, ValueError):
                self.pid = 0
            return client
        client.close()
        return None

    def ensure(self) -> GobgpClient:
        """A client of a running daemon: the one found on the API address, else a new one started."""
        client = self.adopt()
        if client is not None:
            return client
        path = shutil.which(self.binary)
        if path is None:
            raise GobgpdError(f"{self.binary} not found: install Debian's gobgpd (scripts/setup does)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "gobgpd.log", "ab") as log:
            proc = subprocess.Popen([path, "--api-hosts", self.api, "--pprof-disable", "--log-plain",
                                     "--log-level", "info"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pid = proc.pid
        self.pidfile.write_text(str(proc.pid))
        LOG.info("started gobgpd (pid %d, API %s)", proc.pid, self.api)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise GobgpdError(f"gobgpd exited with {proc.returncode}: see {self.state_dir / 'gobgpd.log'}")
            client = self.adopt(0.5)
            if client is not None:
                return client
        raise GobgpdError(f"gobgpd did not answer on {self.api} within {self.start_timeout:.0f} s")

    def running(self) -> bool:
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True
