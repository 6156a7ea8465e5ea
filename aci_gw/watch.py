"""The drift watch: APIC event subscriptions on every tenant the gateway holds an intent for.

One websocket per session (``/socket<token>``) carries the events of all subscriptions (apic.md §5).
The loop keeps it so, whatever happens to the APIC:

* nothing happens before the first tenant is to be watched (no login, no socket);
* each watched tenant has a DN subscription of its subtree, refreshed every third of its timeout; a
  refresh the APIC refuses (the subscription expired) is answered by subscribing again;
* a websocket that closes (APIC restart, session ended), or a session replaced by a new login (the
  push path logs in again when a token expires) makes the loop log in, reconnect and subscribe
  everything again;
* whenever a subscription is (re)made after the first, events may have been missed meanwhile, so the
  tenant is handed to ``on_resync``: the gateway then re-checks it against the intent with one read.

Events are handed to ``on_event`` one MO at a time, on this thread; the handler must be quick (the
gateway classifies and queues, the repair runs elsewhere).
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from aci_gw.apic.errors import ApicError
from aci_gw.apic.rest import RestClient, tls_verify

log = logging.getLogger("aci_gw.watch")

OnEvent = Callable[[str, dict[str, str]], None]
OnResync = Callable[[str, str], None]

_RECONNECT_MAX = 5.0


def _ssl_context(client: RestClient) -> ssl.SSLContext | None:
    """The websocket's TLS: verified as the REST calls are (a context of its own).

    At most TLS 1.2: websockets' sync client sometimes hangs in its opening handshake over TLS 1.3
    (its reader thread blocks in ``SSLSocket.read``; see tests/apic_mock/test_apicmock_subscriptions.py).
    """
    if not client.conn.url.startswith("https"):
        return None
    verify = tls_verify(client.conn)
    if isinstance(verify, ssl.SSLContext):
        context = verify
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


class DriftWatch:
    def __init__(
        self,
        client: RestClient,
        on_event: OnEvent,
        on_resync: OnResync,
        *,
        timeout: int = 60,
        observe: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.client = client
        self.on_event = on_event
        self.on_resync = on_resync
        self.timeout = timeout
        self.observe = observe  # a (re)subscription and why, for the metrics
        self._lock = threading.Lock()
        self._wanted: set[str] = set()
        self._subs: dict[str, tuple[str, float]] = {}  # tenant -> (subscription id, last refresh)
        self._ever: set[str] = set()  # tenants subscribed at least once in this process
        self._stop = threading.Event()
        self._work = threading.Event()  # set once there is a tenant to watch: no login before that
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    # -- control (any thread) ----------------------------------------------------------------------
    def watch(self, tenant: str) -> None:
        with self._lock:
            self._wanted.add(tenant)
        self._work.set()

    def unwatch(self, tenant: str) -> None:
        with self._lock:
            self._wanted.discard(tenant)

    def subscribed(self) -> set[str]:
        """Tenants with a live subscription on the current websocket."""
        with self._lock:
            return set(self._subs) if self.connected.is_set() else set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aci-gw-drift-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._work.set()
        if self._thread is not None:
            self._thread.join(10)

    # -- the loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.2
        fresh = False
        self._work.wait()
        while not self._stop.is_set():
            try:
                self._session(fresh)
                delay = 0.2
            except (ConnectionClosed, InvalidHandshake, InvalidStatus, OSError, ApicError, TimeoutError) as exc:
                log.warning("drift watch: %s: %s; reconnecting in %.1f s", type(exc).__name__, exc, delay)
            except Exception:  # a bug must not end the watch for good
                log.exception("drift watch failed; reconnecting in %.1f s", delay)
            self.connected.clear()
            with self._lock:
                self._subs.clear()
            fresh = True
            self._stop.wait(delay)
            delay = min(delay * 2, _RECONNECT_MAX)

    def _session(self, fresh: bool) -> None:
        token, generation = self.client.websocket_session(fresh)
        with connect(self.client.websocket_url(token), ssl=_ssl_context(self.client), open_timeout=5,
                     close_timeout=1, max_size=None) as ws:
            log.info("drift watch: websocket open")
            self.connected.set()
            while not self._stop.is_set():
                if self.client.login_generation != generation:
                    log.info("drift watch: the APIC session was replaced (new login); reconnecting")
                    return
                self._sync_subscriptions()
                self._receive(ws, 0.2)

    def _receive(self, ws: ClientConnection, wait: float) -> None:
        try:
            frame = ws.recv(timeout=wait)
        except TimeoutError:
            return
        try:
            message: dict[str, Any] = json.loads(frame)
        except ValueError:
            log.warning("drift watch: a frame that is not JSON ignored")
            return
        for item in message.get("imdata") or []:
            with contextlib.suppress(AttributeError, StopIteration, TypeError):
                ((cls, body),) = item.items()
                self.on_event(cls, {k: str(v) for k, v in (body.get("attributes") or {}).items()})

    def _sync_subscriptions(self) -> None:
        """Subscribe new tenants, drop unwatched ones, refresh those due; re-subscribe expired ones."""
        with self._lock:
            wanted = set(self._wanted)
            subs = dict(self._subs)
        now = time.monotonic()
        for tenant in set(subs) - wanted:
            with self._lock:
                self._subs.pop(tenant, None)
        for tenant in sorted(wanted):
            current = subs.get(tenant)
            if current is None:
                reason = "reconnect" if tenant in self._ever else "new"
                self._subscribe(tenant, reason)
            elif now - current[1] >= self.timeout / 3:
                if self.client.refresh_subscription(current[0]):
                    with self._lock:
                        self._subs[tenant] = (current[0], now)
                else:
                    log.info("drift watch: subscription of tenant %s expired; subscribing again", tenant)
                    self._subscribe(tenant, "expired")

    def _subscribe(self, tenant: str, reason: str) -> None:
        sub_id = self.client.subscribe(f"uni/tn-{tenant}", self.timeout)
        with self._lock:
            self._subs[tenant] = (sub_id, time.monotonic())
        self.observe(reason)
        log.info("drift watch: tenant %s subscribed (%s)", tenant, reason)
        if tenant in self._ever:
            self.on_resync(tenant, reason)  # events may have been missed meanwhile
        self._ever.add(tenant)
