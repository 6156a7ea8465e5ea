"""The host's BGP speaker: gobgpd converged to the host's Bgp object, routes in and out.

The reconciler tells the speaker, after every program, what is wanted (``desire``: the host's
``BgpConfig`` and the /32 prefixes of its announced endpoints); one worker thread converges gobgpd to
it (start or restart BGP when the AS or router id changes, add and delete neighbours, add and
withdraw paths), level-triggered, so a failed call is simply retried on the next round. The
endpoint path goes ahead of the programs: an endpoint's /32 is announced as soon as netmaster has
allocated it (``expect``) and withdrawn as soon as its delete starts (``retract``); the program that
follows takes over. A second
thread follows gobgpd's best-path events; on each it re-reads the learned best paths, resolves their
next hops to MACs on the router port, and hands them to the reconciler (``on_routes``), which
re-programs the flows. A next hop not resolved yet is solicited and retried every 0.2 s; a route
without a MAC is not installed (its traffic would go nowhere).

What is announced is read back from gobgpd's RIB when the speaker adopts a running daemon, so an
agent restart neither withdraws nor re-adds anything (``prime`` also loads the learned routes before
the agent's first full sync, so the new flows carry them from the start).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import grpc

from agent.bgp import router_port
from agent.bgp.gobgp import GlobalConfig, GobgpClient, PeerConfig
from agent.bgp.gobgpd import Gobgpd, GobgpdError
from agent.bgp.stubs import StubsUnavailableError
from agent.metrics import AgentMetrics
from agent.pipeline.tables import ROUTER_PORT
from agent.pipeline.view import LearnedRoute
from agent.state import BgpConfig

LOG = logging.getLogger(__name__)

HOLD_TIME = 9  # seconds: a silent peer's routes go within this (keepalives every 3 s)
RETRY = 1.0
RESOLVE_RETRY = 0.2
EARLY_FOR = 60.0  # seconds an early announcement or withdrawal (``expect``, ``retract``) lasts without a program
_ERRORS = (grpc.RpcError, OSError, GobgpdError, StubsUnavailableError)


class BgpSpeaker:
    def __init__(self, daemon: Gobgpd, metrics: AgentMetrics, port: str = ROUTER_PORT,
                 hold_time: int = HOLD_TIME) -> None:
        self.daemon = daemon
        self.metrics = metrics
        self.port = port
        self.hold_time = hold_time
        self.on_routes: list[Callable[[tuple[LearnedRoute, ...]], None]] = []
        self._cond = threading.Condition()
        self._config: BgpConfig | None = None
        self._prefixes: frozenset[str] = frozenset()
        self._expected: dict[str, float] = {}  # prefix -> when: endpoints being added, announced early
        self._retracted: dict[str, float] = {}  # prefix -> when: endpoints being deleted, withdrawn early
        self._dirty = False
        self._client: GobgpClient | None = None
        self._running: GlobalConfig | None = None
        self._announced: set[str] = set()
        self._installed: tuple[LearnedRoute, ...] = ()
        self._unresolved: set[str] = set()
        self._ops = threading.Lock()  # one conversation with gobgpd at a time (converge or shutdown)
        self.error = ""
        self._started = False
        self._neighbor_states: dict[str, str] = {}  # refreshed every converge round (the agent record's)

    # -- what the reconciler calls --------------------------------------------------------------------

    def desire(self, config: BgpConfig | None, prefixes: frozenset[str]) -> None:
        with self._cond:
            if self._started and (config, prefixes) == (self._config, self._prefixes):
                return
            self._config, self._prefixes, self._dirty = config, prefixes, True
            for prefix in prefixes & self._expected.keys():  # taken over
                del self._expected[prefix]
            for prefix in self._retracted.keys() - prefixes:  # gone for good
                del self._retracted[prefix]
            self._cond.notify_all()
        # Nothing runs before the first wish: a daemon adopted at start-up (``prime``) must not be
        # stopped for want of a configuration the agent has not read yet.
        if (config is not None or self._running is not None) and not self._started:
            self.start()

    def expect(self, prefix: str) -> None:
        """An endpoint being added: announce its *prefix* now, not after its veth, port and flows (the
        add path's tail). The next ``desire`` that holds it takes it over; ``forget`` (its add failed)
        or EARLY_FOR seconds without one drop it."""
        with self._cond:
            self._retracted.pop(prefix, None)
            if self._config is not None and prefix not in self._prefixes:
                self._expected[prefix] = time.monotonic()
            self._wake()

    def forget(self, prefix: str) -> None:
        """The add ``expect`` announced failed: withdraw it."""
        with self._cond:
            self._expected.pop(prefix, None)
            self._wake()

    def retract(self, prefix: str) -> None:
        """An endpoint being deleted: withdraw its *prefix* now, not after its flows are removed (the
        delete path's tail), until a ``desire`` without it (or EARLY_FOR seconds)."""
        with self._cond:
            self._expected.pop(prefix, None)
            if prefix in self._prefixes:
                self._retracted[prefix] = time.monotonic()
            self._wake()

    def _wake(self) -> None:
        self._dirty = True
        self._cond.notify_all()

    def _wanted(self) -> frozenset[str]:
        """What to announce: the last program's prefixes, plus the endpoints being added, less those
        being deleted (caller holds _cond)."""
        now = time.monotonic()
        for early in (self._expected, self._retracted):
            for prefix in [p for p, since in early.items() if now - since > EARLY_FOR]:
                del early[prefix]
        if self._config is None:
            return frozenset()
        return frozenset((self._prefixes | self._expected.keys()) - self._retracted.keys())

    def shutdown(self) -> None:
        """Stop BGP now, before the router port goes: the peers get a Cease notification and drop our
        routes at once (after the port is gone they would wait for their hold timer)."""
        with self._cond:
            self._config, self._prefixes = None, frozenset()
            self._expected.clear()
            self._retracted.clear()
        with self._ops:
            try:
                self._converge(None, frozenset())
            except _ERRORS as exc:
                LOG.warning("bgp: stopping gobgpd failed: %s", exc)

    def start(self) -> None:
        with self._cond:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._converge_loop, name="bgp-converge", daemon=True).start()
        threading.Thread(target=self._watch_loop, name="bgp-watch", daemon=True).start()

    def prime(self) -> tuple[LearnedRoute, ...]:
        """At agent start: adopt a running gobgpd (if any) and return its learned routes, resolved,
        for the first full sync. Nothing when no daemon answers."""
        try:
            client = self.daemon.adopt()
            if client is None:
                return ()
            self._adopt(client)
            self._refresh_routes(notify=False)
        except _ERRORS as exc:
            LOG.warning("bgp: could not read the running gobgpd: %s", exc)
        return self._installed

    # -- converging gobgpd ------------------------------------------------------------------------------

    def _adopt(self, client: GobgpClient) -> None:
        self._client = client
        self._running = client.get_global()
        self._announced = {r.prefix for r in client.routes() if not r.learned} if self._running else set()
        if self._running is not None:
            LOG.info("bgp: adopted gobgpd (AS %d, router id %s, %d paths announced)", self._running.asn,
                     self._running.router_id, len(self._announced))

    def _converge_loop(self) -> None:
        while True:
            with self._cond:
                if not self._dirty:
                    self._cond.wait(RESOLVE_RETRY if self._unresolved else RETRY)
                config, prefixes, self._dirty = self._config, self._wanted(), False
            try:
                with self._ops:
                    self._converge(config, prefixes)
                if self._unresolved:
                    self._refresh_routes()
                self.error = ""
            except _ERRORS as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                LOG.warning("bgp: converging gobgpd failed (retrying): %s", self.error)
                # The next round adopts the daemon again (reading back what runs), or starts a new one
                # if it died: a dead channel is never retried for ever.
                self._client = None
                with self._cond:
                    self._dirty = True
                time.sleep(RETRY)

    def _converge(self, config: BgpConfig | None, prefixes: frozenset[str]) -> None:
        if config is None:
            if self._client is not None and self._running is not None:
                self._client.stop()
                LOG.info("bgp: stopped (no Bgp object for this host)")
            self._running, self._announced = None, set()
            self._neighbor_states = {}
            self._publish(())
            self._gauges(config)
            return
        if self._client is None:
            self._adopt(self.daemon.ensure())
        client = self._client
        assert client is not None
        want = GlobalConfig(config.asn, config.address, config.address)
        if self._running != want:
            if self._running is not None:
                client.stop()
            client.start(want)
            self._running, self._announced = want, set()
            LOG.info("bgp: started, AS %d, router id %s", want.asn, want.router_id)
        # paths first: an endpoint add waits for its announcement, not for the neighbour check
        for prefix in sorted(prefixes - self._announced):
            client.add_path(prefix, config.address)
            self._announced.add(prefix)
        for prefix in sorted(self._announced - prefixes):
            client.delete_path(prefix, config.address)
            self._announced.discard(prefix)
        have = client.peer_configs()
        peers = {n: PeerConfig(n, config.neighbor_asn, config.address, self.hold_time) for n in config.neighbors}
        for address, peer in have.items():
            if peers.get(address) != peer:
                client.delete_peer(address)
                LOG.info("bgp: neighbor %s removed", address)
        for address, peer in peers.items():
            if have.get(address) != peer:
                client.add_peer(peer)
                LOG.info("bgp: neighbor %s AS %d added", address, peer.asn)
        self._neighbor_states = {p.address: p.state for p in client.peers()}
        self._gauges(config)

    def _gauges(self, config: BgpConfig | None) -> None:
        self.metrics.bgp_neighbors.set(len(config.neighbors) if config else 0)
        self.metrics.bgp_established.set(sum(s == "established" for s in self._neighbor_states.values()))
        self.metrics.bgp_announced.set(len(self._announced))
        self.metrics.bgp_learned.set(len(self._installed))

    # -- routes in -------------------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        """Follow gobgpd's best-path events; each one re-reads the learned routes. Reconnects."""
        while True:
            client = self._client
            if client is None or self._running is None:
                time.sleep(RETRY / 4)
                continue
            try:
                for _ in client.watch_best():
                    self._refresh_routes()
                    if client is not self._client:
                        break
            except _ERRORS as exc:
                LOG.debug("bgp: watch ended: %s", exc)
            time.sleep(RETRY / 4)

    def _refresh_routes(self, notify: bool = True) -> None:
        client = self._client
        if client is None or self._running is None:
            return
        learned = tuple(r for r in client.routes() if r.learned)
        resolved, unresolved = [], set()
        for route in learned:
            mac = router_port.neighbor_mac(self.port, route.next_hop)
            if mac:
                resolved.append(LearnedRoute(route.prefix, route.next_hop, mac))
            else:
                unresolved.add(route.next_hop)
        for next_hop in unresolved:
            router_port.solicit(self.port, next_hop)
        self._unresolved = unresolved
        if notify:
            self._publish(tuple(resolved))
        else:
            self._installed = tuple(resolved)

    def _publish(self, routes: tuple[LearnedRoute, ...]) -> None:
        if routes == self._installed:
            return
        for hook in self.on_routes:  # the flows first: what inspect calls installed is on the switch
            hook(routes)
        self._installed = routes
        LOG.info("bgp: %d learned route(s) installed", len(routes))

    # -- inspect ----------------------------------------------------------------------------------------

    def neighbor_states(self) -> dict[str, str]:
        """Neighbour -> session state as of the last converge round (at most a second old; no gRPC)."""
        return dict(self._neighbor_states)

    def info(self) -> dict[str, Any]:
        """Live from gobgpd: neighbours (state, uptime, prefixes) and the best routes; plus what the
        agent asked for and installed."""
        config = self._config
        out: dict[str, Any] = {
            "configured": asdict(config) if config else None, "api": self.daemon.api,
            "daemon_pid": self.daemon.pid or None, "error": self.error,
            "announced": sorted(self._announced), "installed": [asdict(r) for r in self._installed],
            "unresolved_next_hops": sorted(self._unresolved), "neighbors": [], "routes": [],
        }
        client = self._client
        if client is None or config is None:
            out["state"] = "not configured" if config is None else "starting"
            return out
        try:
            now = time.time()
            out["neighbors"] = [{**asdict(p), "uptime": round(now - p.up_since, 1) if p.up_since else 0}
                                for p in client.peers()]
            out["routes"] = [asdict(r) for r in client.routes()]
            out["state"] = "running"
        except _ERRORS as exc:
            out["state"] = "unreachable"
            out["error"] = f"gobgpd at {self.daemon.api}: {exc}"
        configured = set(config.neighbors)
        missing = configured - {n["address"] for n in out["neighbors"]}
        out["neighbors"] += [{"address": n, "state": "not configured yet"} for n in sorted(missing)]
        return out
