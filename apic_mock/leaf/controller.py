"""The leaf's control loop: APIC tree -> policy -> flows, endpoint learning and reporting.

Each cycle reads the tenant trees from the APIC (one class query), rebuilds the policy for this node
and its attached ports, folds in what the learner saw, and replaces the flows in one bundle when they
changed. It runs every ``poll_interval`` seconds, at once when the learner sees something new, and
at once when the APIC reports a change on its websocket (:mod:`apic_mock.leaf.watch`), so an APIC
change is enforced within one cycle (tens of ms), or one poll interval when events are lost. Reading
the whole tree each time, instead of applying subscription events, means the leaf can never drift
from the APIC: events are only a wake-up call. Learnt endpoints are reported as ``fvCEp`` (diffed
against what was reported; the APIC's list is re-read every ``resync_interval`` to heal). A status
file in the run directory tells tests and the demo how far the leaf is (``read_at``: when the APIC
read behind the installed flows started).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apic_mock.leaf.apic import ApicReadError, LeafApicClient
from apic_mock.leaf.flows import T_SOURCE, LearntEndpoint, Numbering, build_flows
from apic_mock.leaf.learning import EndpointRecord, EndpointTable, Learner, Sighting
from apic_mock.leaf.model import LeafPolicy, Mo, build_policy
from apic_mock.leaf.switch import LEARN_OFPORT, LEARN_PORT, LeafSwitch
from apic_mock.leaf.watch import ApicWatcher

log = logging.getLogger("apic_mock.leaf.controller")


@dataclass
class LeafConfig:
    node: int
    netns: str
    rundir: Path
    apic_url: str
    username: str = "admin"
    password: str = "password"
    ca_file: str | None = None
    pod: int = 1
    ports: dict[str, str] = field(default_factory=dict)  # fabric port -> interface in the leaf netns
    poll_interval: float = 0.5
    resync_interval: float = 30.0
    endpoint_age: float = 900.0
    subscribe: bool = True  # wake on APIC events (websocket) as well as every poll_interval


class LeafController:
    def __init__(self, config: LeafConfig) -> None:
        self.config = config
        self.switch = LeafSwitch(config.netns, config.rundir)
        self.apic = LeafApicClient(config.apic_url, config.username, config.password, config.ca_file)
        self.table = EndpointTable(config.endpoint_age)
        self.sightings: queue.SimpleQueue[Sighting] = queue.SimpleQueue()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.learner: Learner | None = None
        self.watcher: ApicWatcher | None = None
        self.tenants: list[Mo] = []
        self.policy = LeafPolicy(config.node)
        self.numbering: Numbering | None = None
        self.reported: dict[str, tuple[str, str, str]] = {}  # fvCEp dn -> (ip, encap, path)
        self.apic_error: str | None = None
        self.read_at = 0.0
        self.cycles = 0
        self.flow_count = 0
        self.ports: dict[str, int] = {}
        self.timings: dict[str, float] = {}  # of the last cycle, cumulative from its start
        self._counters: dict[tuple[int, str], int] = {}
        self._next_counters = 0.0
        self._next_resync = 0.0

    @property
    def status_file(self) -> Path:
        return self.config.rundir / "status.json"

    # -- lifecycle -------------------------------------------------------------------------------
    def setup(self) -> None:
        self.config.rundir.mkdir(parents=True, exist_ok=True)
        self.switch.create()
        for fabric, iface in self.config.ports.items():
            self.switch.add_port(fabric, iface)
        self.learner = Learner(self.config.netns, LEARN_PORT, self._on_sighting)
        self.learner.start()
        if self.config.subscribe:
            self.watcher = ApicWatcher(self.config.apic_url, self.config.username, self.config.password,
                                       self.config.ca_file, self.wake.set)
            self.watcher.start()
        self._write_status("starting")
        log.info("leaf up", extra={"node": self.config.node, "netns": self.config.netns,
                                   "ports": self.config.ports})

    def run(self) -> None:
        """Cycle until :meth:`stop`; then tear everything down."""
        try:
            while not self.stopping.is_set():
                self.cycle()
                self.wake.wait(self.config.poll_interval)
                self.wake.clear()
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def shutdown(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.learner is not None:
            self.learner.stop()
        for dn in list(self.reported):
            try:
                self.apic.remove_endpoint(dn)
            except ApicReadError:
                break
        self.apic.close()
        self.switch.destroy()
        log.info("leaf down", extra={"node": self.config.node, "netns": self.config.netns})

    # -- one cycle -------------------------------------------------------------------------------
    def cycle(self) -> None:
        read_at = time.time()
        started = time.perf_counter()
        try:
            self.tenants = self.apic.tenants()
            if self.apic_error:
                log.info("APIC reachable again")
            self.apic_error = None
        except ApicReadError as exc:
            if self.apic_error != str(exc):
                log.warning("APIC read failed; keeping the last policy", extra={"error": str(exc)})
            self.apic_error = str(exc)
        self.timings["read_ms"] = round((time.perf_counter() - started) * 1000, 1)
        ports = self.ports = self.switch.ports()
        self.policy = build_policy(self.tenants, self.config.node, ports)
        self._learn()
        self._age()
        endpoints = [LearntEndpoint(r.mac, r.ip, r.port, r.vlan) for _, r in self.table.snapshot()]
        flows, self.numbering = build_flows(self.policy, ports, LEARN_OFPORT, endpoints)
        self.timings["build_ms"] = round((time.perf_counter() - started) * 1000, 1)
        try:
            if self.switch.apply(flows):
                log.info("flows applied", extra={"flows": len(flows), "bindings": len(self.numbering.binding),
                                                 "rules": len(self.policy.rules), "endpoints": len(endpoints)})
        except RuntimeError as exc:
            self.switch.forget_applied()
            log.error("flows not applied", extra={"error": str(exc)})
            self._write_status("error")
            return
        self.timings["apply_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self.flow_count = len(flows)
        self._report()
        if self.apic_error is None:
            self.read_at = read_at
        self.cycles += 1
        self.timings["cycle_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self._write_status("running")

    def _on_sighting(self, sighting: Sighting) -> None:
        self.sightings.put(sighting)
        self.wake.set()

    def _learn(self) -> None:
        by_id = self.numbering.binding_by_id() if self.numbering else {}
        now = time.monotonic()
        while True:
            try:
                s = self.sightings.get_nowait()
            except queue.Empty:
                break
            binding = by_id.get(s.binding)
            if binding is None or binding.epg not in self.policy.epgs:
                continue
            bd = self.policy.bd_of(binding.epg)
            ip = s.ip if s.ip and _in_subnets(s.ip, bd.gateways) else None
            if self.table.learn(bd.dn, EndpointRecord(s.mac, binding.port, binding.vlan, binding.epg, ip, now)):
                log.info("endpoint learnt", extra={"mac": s.mac, "ip": ip, "port": binding.port,
                                                   "vlan": binding.vlan, "epg": binding.epg})
                if ip:
                    self._release_ip(ip, bd.dn, s.mac)
        gone = self.table.retain(
            lambda bd, r: (b := self.policy.binding(r.port, r.vlan)) is not None and b.epg == r.epg
            and self.policy.epgs[r.epg].bd == bd)
        for r in gone:
            log.info("endpoint removed: binding gone", extra={"mac": r.mac, "port": r.port, "vlan": r.vlan})

    def _release_ip(self, ip: str, bd: str, mac: str) -> None:
        """One IP, one endpoint per VRF: the latest sighting wins (a moved or re-used address)."""
        vrf = self.policy.bds[bd].vrf
        in_vrf = {b for b, spec in self.policy.bds.items() if spec.vrf == vrf}
        for old in self.table.release_ip(ip, (bd, mac), in_vrf.__contains__):
            log.info("endpoint IP moved", extra={"ip": ip, "from": old.mac, "to": mac})

    def _age(self) -> None:
        """Refresh endpoints from their source-flow counters, then expire silent ones."""
        now = time.monotonic()
        if now < self._next_counters or self.numbering is None:
            return
        self._next_counters = now + min(5.0, self.config.endpoint_age / 4)
        by_id = self.numbering.binding_by_id()
        counters = self.switch.source_counters(T_SOURCE)
        for (bid, mac), n in counters.items():
            if n != self._counters.get((bid, mac)) and (b := by_id.get(bid)) is not None and b.epg in self.policy.epgs:
                self.table.touch(self.policy.epgs[b.epg].bd, mac, now)
        self._counters = counters
        for r in self.table.expire(now):
            log.info("endpoint aged out", extra={"mac": r.mac, "port": r.port, "vlan": r.vlan, "epg": r.epg})

    def _path(self, port: str) -> str:
        return f"topology/pod-{self.config.pod}/paths-{self.config.node}/pathep-[{port}]"

    def _report(self) -> None:
        """Make the APIC's fvCEp list for this node match the table."""
        if self.apic_error is not None:
            return
        now = time.monotonic()
        try:
            if now >= self._next_resync:
                current = self.apic.endpoints_on(self.config.node, self.config.pod)
                self.reported = {dn: (a.get("ip", "0.0.0.0"), a.get("encap", ""), a.get("fabricPathDn", ""))
                                 for dn, a in current.items()}
                self._next_resync = now + self.config.resync_interval
            desired = {}
            for _, r in self.table.snapshot():
                mac = r.mac.upper()
                encap = f"vlan-{r.vlan}" if r.vlan else "unknown"
                desired[f"{r.epg}/cep-{mac}"] = (r.epg, mac, r.ip or "0.0.0.0", encap, self._path(r.port))
            for dn in [d for d in self.reported if d not in desired]:
                self.apic.remove_endpoint(dn)
                del self.reported[dn]
            for dn, (epg, mac, ip, encap, path) in desired.items():
                if self.reported.get(dn) != (ip, encap, path):
                    self.apic.report_endpoint(epg, mac, ip, encap, path)
                    self.reported[dn] = (ip, encap, path)
        except ApicReadError as exc:
            log.warning("endpoint report failed", extra={"error": str(exc)})
            self._next_resync = 0.0

    def _write_status(self, state: str) -> None:
        data: dict[str, Any] = {
            "state": state,
            "pid": os.getpid(),
            "node": self.config.node,
            "netns": self.config.netns,
            "read_at": self.read_at,
            "cycles": self.cycles,
            "apic_error": self.apic_error,
            "subscribed": self.watcher is not None and self.watcher.connected.is_set(),
            "flows": self.flow_count,
            "timings": self.timings,
            "ports": self.ports,
            "bindings": [{"port": b.port, "vlan": b.vlan, "epg": b.epg} for b in self.policy.bindings],
            "endpoints": [{"mac": r.mac, "ip": r.ip, "port": r.port, "vlan": r.vlan, "epg": r.epg}
                          for _, r in self.table.snapshot()],
        }
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.status_file)


def _in_subnets(ip: str, gateways: list[ipaddress.IPv4Interface]) -> bool:
    """limitIpLearnToSubnets: an IP is learnt only inside one of the BD's subnets (any IP without subnets)."""
    addr = ipaddress.IPv4Address(ip)
    return not gateways or any(addr in g.network for g in gateways)
