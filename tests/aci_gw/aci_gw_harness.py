"""Test harness of the aci_gw suite: a real gateway on a free port, and helpers that act on apic_mock as
an operator would (configure, read back, count writes). Named uniquely so that test modules import it
unambiguously next to other suites' conftest files."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from aci_gw.apic import make_client
from aci_gw.app import create_app
from aci_gw.config import load_settings
from aci_gw.gateway import Gateway
from aci_gw.metrics import Metrics
from aci_gw.mo import Mo
from testbed.aci_gw import apic_env
from testbed.aci_gw_payloads import PHYS_DOMAIN
from testbed.apic import ApicMock


def gateway_env(apic: ApicMock, **extra: str) -> dict[str, str]:
    """The environment an operator would set for this mock (TLS verified against its CA), with the
    short retry budget these tests count requests against."""
    return apic_env(apic, APIC_RETRIES="3", APIC_BACKOFF="0.02", **extra)


class RunningGateway:
    """A gateway served by uvicorn on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, env: dict[str, str], token: str | None = None) -> None:
        self.settings = load_settings(env, "127.0.0.1:0", token)
        self.metrics = Metrics()
        client = make_client(self.settings.apic, self.metrics) if self.settings.apic else None
        self.gateway = Gateway(self.settings, client, self.metrics)
        self.gateway.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(self.gateway, token), log_config=None, access_log=False,
                                lifespan="off", log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive(), "gateway did not start"
            assert time.monotonic() < deadline, "gateway did not start in time"
            time.sleep(0.01)
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def call(self, path: str, body: Any, **kw: Any) -> dict[str, Any]:
        """POST a Contiv API request; Contiv's API always answers 200."""
        response = self.http.post(path, json=body, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def create(self, body: Any) -> dict[str, Any]:
        return self.call("/createAppProf", body)

    def delete(self, tenant: str, app: str) -> dict[str, Any]:
        return self.call("/deleteAppProf", {"tenant": tenant, "app-prof": app})

    def stop(self) -> None:
        self.http.close()
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
        self.gateway.close()
        if self.gateway.client is not None:
            self.gateway.client.close()


def add_phys_domain(apic: ApicMock, name: str = PHYS_DOMAIN) -> None:
    """What an operator prepares before Contiv: the physical domain EPGs attach to."""
    user_post(apic, "uni", {"physDomP": {"attributes": {"name": name}}})


def user_post(apic: ApicMock, dn: str, body: dict[str, Any]) -> None:
    """Configure the APIC as a user would, outside the gateway (no ownership annotation)."""
    client = apic.client()
    try:
        response = client.post(f"/api/mo/{dn}.json", json=body)
    finally:
        client.close()
    assert response.status_code == 200, response.text


def read_tree(apic: ApicMock, dn: str) -> Mo | None:
    """The object at ``dn`` with its full subtree, as the APIC holds it."""
    client = apic.client()
    try:
        response = client.get(f"/api/mo/{dn}.json", params={"rsp-subtree": "full"})
    finally:
        client.close()
    assert response.status_code == 200, response.text
    items = response.json()["imdata"]
    return Mo.from_json(items[0]) if items else None


def writes(apic: ApicMock) -> int:
    return apic.admin.stats(log=False)["writes"]
