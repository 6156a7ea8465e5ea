"""Start a real ``aci-gw`` process for tests, benchmarks and demos, on a free port, and stop it.

The gateway is configured as an operator would (Contiv's environment variables), against an APIC
such as ``testbed.apic.ApicMock``::

    with AciGwProcess.start(apic_env(apic)) as gw:
        httpx.post(gw.url + "/createAppProf", json=payload)

``restart()`` keeps the port, so a client configured with ``gw.url`` reconnects to the new process
(the outage tests stop and restart it).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testbed.ports import free_port
from testbed.process import ServiceProcess


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


class AciGwProcess(ServiceProcess):
    name = "aci-gw"
    ready_path = "/metrics"  # answers without the APIC or a token: the process is up and serving

    def __init__(self, env: Mapping[str, str], port: int, log_path: Path | None, token: str | None) -> None:
        super().__init__(port, env=env, log_path=log_path)
        self.token = token

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "aci_gw", "--listen-url", f"127.0.0.1:{self.port}",
                *(["--token", self.token] if self.token else [])]

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
        gw = cls(env, port or free_port(), log_path, token)
        gw.run(timeout)
        return gw

    start = spawn  # ``with AciGwProcess.start(env) as gw:`` stops it at the end of the block
