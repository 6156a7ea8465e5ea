"""The websocket over TLS 1.3 with the asyncio websockets client (what async consumers such as an
event-driven gateway would use), including many sequential connects."""

from __future__ import annotations

import asyncio
import json

from apicmock_helpers import mo
from websockets.asyncio.client import connect

from testbed.apic import ApicMock


async def test_async_client_receives_events_over_tls13(apic_mock: ApicMock) -> None:
    with apic_mock.client() as c:
        url = apic_mock.url.replace("https://", "wss://") + "/socket" + c.cookies["APIC-cookie"]
        for _ in range(30):  # repeated opening handshakes must all complete
            async with connect(url, ssl=apic_mock.ssl_context(), open_timeout=5):
                pass
        async with connect(url, ssl=apic_mock.ssl_context(), open_timeout=5) as ws:
            sub = c.get("/api/class/fvTenant.json?subscription=yes").json()["subscriptionId"]
            await asyncio.to_thread(c.post, "/api/mo/uni.json", json=mo("fvTenant", {"name": "async"}))
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert frame["subscriptionId"] == [sub]
    assert frame["imdata"][0]["fvTenant"]["attributes"]["dn"] == "uni/tn-async"
