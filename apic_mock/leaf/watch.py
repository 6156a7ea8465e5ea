"""Wake the leaf as soon as the APIC's tree changes: a websocket subscription.

Events only trigger a cycle; the cycle still reads the whole tree, so a lost event, a dropped socket
or a mock reset (which forgets subscriptions) costs at most one poll interval, never correctness.
The subscription is a DN subscription on ``uni`` restricted to the classes the leaf enforces: in
apic_mock a DN subscription reports changes in the object's whole subtree, so one subscription
covers every tenant, and the leaf's own ``fvCEp`` reports do not wake it. The session is renewed
(new login, new socket) every few minutes so token expiry never silences it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable

import httpx
import websockets

from apic_mock.leaf.model import TREE_CLASSES

log = logging.getLogger("apic_mock.leaf.watch")

REFRESH_EVERY = 20.0
SESSION_LIFETIME = 300.0
RETRY_DELAY = 1.0


class ApicWatcher:
    """Calls ``on_change`` (from its own thread) whenever the APIC reports a change under ``uni``."""

    def __init__(self, url: str, username: str, password: str, ca_file: str | None,
                 on_change: Callable[[], None]) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.ssl: ssl.SSLContext | None = None
        if self.url.startswith("https"):
            self.ssl = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self.on_change = on_change
        self.connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="leaf-apic-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(self._forever())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        self._loop.close()

    async def _forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._session(), SESSION_LIFETIME)
            except TimeoutError:
                continue  # renew the session
            except (OSError, httpx.HTTPError, websockets.WebSocketException, KeyError, ValueError) as exc:
                log.debug("APIC subscription lost; retrying", extra={"error": str(exc)})
            finally:
                self.connected.clear()
            await asyncio.sleep(RETRY_DELAY)

    async def _session(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, verify=self.ssl or False, timeout=10) as http:
            body = {"aaaUser": {"attributes": {"name": self.username, "pwd": self.password}}}
            login = await http.post("/api/aaaLogin.json", json=body)
            login.raise_for_status()
            token = login.json()["imdata"][0]["aaaLogin"]["attributes"]["token"]
            ws_url = "ws" + self.url[len("http"):] + f"/socket{token}"
            async with websockets.connect(ws_url, ssl=self.ssl, open_timeout=10) as ws:
                reply = await http.get("/api/mo/uni.json", params={
                    "subscription": "yes", "target-subtree-class": TREE_CLASSES, "rsp-prop-include": "naming-only"})
                reply.raise_for_status()
                sub_id = reply.json()["subscriptionId"]
                self.connected.set()
                self.on_change()  # whatever changed before the subscription existed
                refresher = asyncio.create_task(self._refresh(http, ws, sub_id))
                try:
                    async for _ in ws:
                        self.on_change()
                finally:
                    refresher.cancel()

    async def _refresh(self, http: httpx.AsyncClient, ws: websockets.ClientConnection, sub_id: str) -> None:
        """Keep the subscription alive; close the socket when the APIC forgot it (e.g. a mock reset)."""
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            try:
                response = await http.get("/api/subscriptionRefresh.json", params={"id": sub_id})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                await ws.close()
                return
