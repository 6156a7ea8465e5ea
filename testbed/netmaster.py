"""Start a real netmaster process for tests, benchmarks and demos, on a free port, and stop it cleanly.

``with NetmasterProcess.start() as nm: httpx.get(nm.url + "/version")``; ``spawn`` when the caller
stops it (``nm.stop(signal.SIGKILL)`` for a crash).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from testbed.ports import free_port
from testbed.process import ServiceProcess


class NetmasterProcess(ServiceProcess):
    name = "netmaster"
    ready_path = "/healthz"
    ready_statuses = (200, 401)  # 401: a token protects the API, and it serves

    def __init__(self, store_url: str, port: int, *, args: Sequence[str] = (), host: str = "127.0.0.1",
                 env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        super().__init__(port, host=host, env=env, log_path=log_path)
        self.store_url = store_url
        self.args = list(args)

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "netmaster", "--listen-url", f"{self.host}:{self.port}",
                "--cluster-store", self.store_url, *self.args]

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
        nm = cls(store_url, port or free_port(host), args=args, host=host, env=env, log_path=log_path)
        nm.run(timeout)
        return nm

    start = spawn  # ``with NetmasterProcess.start() as nm:`` stops it at the end of the block
