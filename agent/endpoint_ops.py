"""Endpoint create and delete: the one code path behind every front end (CNI plugin, Docker driver).

``add`` asks netmaster for the endpoint (address, MAC, tags: netmaster allocates), records what only
this host knows (namespace, interface name) on disk, makes the veth with its container end created
inside the container's namespace with the endpoint's MAC and MTU and configured (address, routes:
``Plumber.configure``, which a restarted agent's reconcile uses too), adds the OVS port and waits
for ovs-vswitchd to open it (``Reconciler.plumb_endpoint``), installs the flows the new endpoint
changes (the reconciler's exact flow diff against the ports as they are, without converging the
rest of the host), then answers. The full reconcile of the host follows in the background, once
for a burst of calls, as the safety net; a crash before it is covered by the full sync every agent
start does (a port whose endpoint the state does not list is removed). Any failure rolls back
everything done so far (local record, veth, port, flows, the netmaster endpoint): nothing leaks.
``delete`` is the mirror image: flows out, then port and veth, then the background full reconcile;
then netmaster releases the endpoint.

Availability: every netmaster call of ``add`` waits at most ``request_wait`` seconds (the source's
setting, ``--netmaster-wait``, 5 s by default) for an absent netmaster, and as long for the agent's
first state from netmaster (just started, or netmaster just back), then fails with kind
``unavailable``; the runtime retries (CNI and Docker both do), and the call succeeds once netmaster
is back. Existing endpoints keep working meanwhile. ``delete`` does not need netmaster: the release
is written to disk first (agent.pending_releases), the host side is removed, and the release is
sent to netmaster at once if it is reachable, else kept and retried in the background (also after
an agent restart) until netmaster confirms. Teardown never waits for the control plane; the address
returns to the pool when netmaster is back.

``reclaim`` creates a local endpoint in netmaster again, with its address, when netmaster lost it
(endpoint GC while this host was cut off); ``agent.reclaim`` decides when, and runs before an add
(``before_add``) so a new container cannot be given a running container's address first.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from agent.local_endpoints import EndpointSpec, LocalEndpoint, LocalEndpointStore
from agent.netmaster_source import NetmasterStateSource
from agent.netns import netns_path
from agent.pending_releases import PendingReleases
from agent.plumbing import EndpointLink, container_ifname, host_ifname
from agent.reconciler import VXLAN_OVERHEAD, Reconciler
from contiv_api.netmaster_client import CLAIM_LABEL, NetmasterClient, NetmasterError, NetmasterUnavailableError

LOG = logging.getLogger(__name__)

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,254}")  # netmaster's endpointID rule
_IFNAME_RE = re.compile(r"[^/\s:]{1,15}")


@dataclass(frozen=True)
class AddRequest(EndpointSpec):
    requested_ip: str = ""  # an address the runtime asks for; netmaster checks it is free


@dataclass(frozen=True)
class AddResult:
    endpoint_id: str
    ip: str
    prefix_len: int
    mac: str
    gateway: str
    ifname: str
    host_ifname: str
    container_ifname: str  # container end: its name in the namespace, or (no netns) the name the runtime moves
    mtu: int
    netns: str | None
    vlan: int
    vni: int
    group_id: int


class EndpointError(Exception):
    """``kind`` in {"invalid", "not_found", "conflict", "unavailable", "internal"}; ``message``."""

    KINDS = ("invalid", "not_found", "conflict", "unavailable", "internal")

    def __init__(self, kind: str, message: str) -> None:
        assert kind in self.KINDS, kind
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


_STATUS_KIND = {400: "invalid", 404: "not_found", 409: "conflict", 503: "unavailable"}


def _from_netmaster(exc: NetmasterError) -> EndpointError:
    if isinstance(exc, NetmasterUnavailableError):
        return EndpointError("unavailable", f"netmaster unavailable: {exc.message}")
    return EndpointError(_STATUS_KIND.get(exc.status, "internal"), exc.message)


class EndpointOps:
    #: seconds between retries of the releases netmaster owes (while it stays unreachable)
    RELEASE_RETRY = (1.0, 10.0)  # first, longest

    def __init__(self, source: NetmasterStateSource, reconciler: Reconciler, local: LocalEndpointStore,
                 releases: PendingReleases) -> None:
        self.source = source
        self.reconciler = reconciler
        self.local = local
        self.releases = releases
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.before_add: Callable[[], None] | None = None  # agent.reclaim's pass over lost endpoints
        self._release_wake = threading.Event()
        self._gauge()

    @contextmanager
    def _locked(self, endpoint_id: str) -> Iterator[None]:
        """Calls for one endpoint run one at a time (a runtime may send DEL while ADD still runs)."""
        with self._locks_guard:
            lock = self._locks.setdefault(endpoint_id, threading.Lock())
        with lock:
            yield

    # -- add ------------------------------------------------------------------------------------------

    def add(self, req: AddRequest) -> AddResult:
        _validate(req)
        if self.before_add is not None:
            self.before_add()
        with self._locked(req.endpoint_id):
            existing = self.local.get(req.endpoint_id)
            if existing is not None:
                if _identity(existing) != _identity(req):
                    raise EndpointError("conflict", f"endpoint {req.endpoint_id} exists for another container, "
                                                    "network or namespace")
                problem = self._problem(existing)
                if not problem:
                    return _result(existing)
                LOG.info("endpoint %s exists but is incomplete (%s); plumbing it again", req.endpoint_id, problem)
                with self.reconciler.claim(req.endpoint_id):
                    self.reconciler.remove_endpoint_port(req.endpoint_id)
            if not self.source.synced and not self.source.wait_synced(self.source.request_wait):
                raise EndpointError("unavailable", "agent has not synced with netmaster yet")
            if req.endpoint_id in self.releases and not self._release(req.endpoint_id):
                # the same id again after a DEL whose release netmaster has not confirmed yet: the old
                # endpoint goes first (an ADD needs netmaster anyway)
                raise EndpointError("unavailable", f"endpoint {req.endpoint_id}: the release of its previous "
                                                   "incarnation is still pending with netmaster")
            try:
                with self.reconciler.claim(req.endpoint_id):
                    return self._add(req)
            finally:
                self.source.request_sync()

    def _add(self, req: AddRequest) -> AddResult:
        """netmaster allocates the endpoint; then its veth, container end and OVS port are made and
        its flows installed (``_plumb``). The endpoint is claimed."""
        started = time.monotonic()
        record = self._created(self._create_started(req))
        answered = time.monotonic()
        if record.get("host") != self.reconciler.cfg.host_label:  # netmaster refuses this already (409)
            raise EndpointError("conflict", f"endpoint {req.endpoint_id} belongs to host {record.get('host')}")
        self.reconciler.endpoint_allocated(record["ipAddress"], record["encap"])
        try:
            return self._plumb(req, record, f"netmaster {(answered - started) * 1000:.1f} ms")
        except Exception as exc:
            self.reconciler.endpoint_abandoned(record["ipAddress"], record["encap"])
            self._rollback(req.endpoint_id)
            if isinstance(exc, EndpointError):
                raise
            if isinstance(exc, FileNotFoundError) and req.netns and exc.filename == netns_path(req.netns):
                raise EndpointError("invalid", f"network namespace {req.netns} does not exist") from None
            LOG.exception("endpoint %s: add failed", req.endpoint_id)
            raise EndpointError("internal", f"endpoint {req.endpoint_id}: {exc}") from exc

    def _create_started(self, req: AddRequest) -> concurrent.futures.Future[dict[str, Any]]:
        cfg = self.reconciler.cfg
        optional: dict[str, Any] = {"containerName": req.container_name, "intfName": req.ifname,
                                    "labels": dict(req.labels), "vtepIP": cfg.vtep_ip}
        if req.requested_ip:
            optional["ipAddress"] = req.requested_ip

        async def create(client: NetmasterClient) -> dict[str, Any]:
            return await client.create_endpoint(req.endpoint_id, network=req.network, tenant=req.tenant,
                                                group=req.group or None, container_id=req.container_id,
                                                host=cfg.host_label, **optional)

        return self.source.ops_started(create)

    def _created(self, pending: concurrent.futures.Future[dict[str, Any]]) -> dict[str, Any]:
        try:
            return pending.result(self.source.ops_timeout)
        except NetmasterError as exc:
            raise _from_netmaster(exc) from None

    def _plumb(self, req: AddRequest, record: dict[str, Any], timing: str) -> AddResult:
        """Record the endpoint, make its veth with the container end configured (or, for a runtime
        that moves the container end itself, left in this namespace) and its OVS port, then install
        its flows.

        Everything that changes links in the agent's namespace happens here, within a couple of
        milliseconds, after netmaster has answered: ovs-vswitchd reconfigures the whole bridge for
        every link change in its namespace and for every port added, and what arrives while it
        reconfigures is taken together in its next pass. Made this way an endpoint costs it two
        passes; with the veth and port made while netmaster answered and the container end brought
        up afterwards it cost three or four (half as much again of its CPU, on a machine where the
        plugin, the agent and ovs-vswitchd share the cores, for no shorter wait)."""
        subnet = ipaddress.IPv4Network(record["subnet"], strict=False)
        gateway = record.get("gateway", "")
        if gateway and ipaddress.IPv4Address(gateway) not in subnet:
            gateway = ""  # a gateway outside the subnet is not routable from the container
        vxlan = record["encap"] == "vxlan"
        local = LocalEndpoint(
            **req.spec_fields(),
            host_ifname=host_ifname(req.endpoint_id),
            container_ifname=req.ifname if req.netns is not None else container_ifname(req.endpoint_id),
            ip=record["ipAddress"], prefix_len=subnet.prefixlen, mac=record["macAddress"], gateway=gateway,
            mtu=self.reconciler.cfg.underlay_mtu - (VXLAN_OVERHEAD if vxlan else 0),
            # the tag on the uplink: the EPG's (its own VLAN in ACI mode, else the network's)
            vlan=0 if vxlan else int(record.get("groupPktTag") or record.get("pktTag", 0)),
            vni=int(record.get("externalPktTag", 0)) if vxlan else 0,
            group_id=int(record.get("endpointGroupId", 0)))
        self.local.put(local)
        self.source.note_endpoint(record)
        started = time.monotonic()
        ofport = self.reconciler.plumb_endpoint(self._link(local), replace=True)
        plumbed = time.monotonic()
        self._sync_flows()
        flows_ms, plumb_ms = (time.monotonic() - plumbed) * 1000, (plumbed - started) * 1000
        programmed = self.reconciler.programmed_ofport(req.endpoint_id)
        if programmed != ofport:  # e.g. netmaster's record did not make it into the state
            raise EndpointError("internal", f"endpoint {req.endpoint_id}: flows not installed "
                                            f"(port {ofport}, flows for port {programmed or 'none'})")
        LOG.info("endpoint %s added: %s on %s/%s (%s; then veth and port %.1f ms, flows %.1f ms)",
                 req.endpoint_id, local.ip, req.tenant, req.network, timing, plumb_ms, flows_ms)
        return _result(local)

    def _sync_flows(self) -> None:
        """The quick apply: flows of the current state on the ports as they are now."""
        self.source.sync(apply=self.reconciler.reconcile_flows)

    def _link(self, local: LocalEndpoint) -> EndpointLink:
        return EndpointLink(local.endpoint_id, local.netns or "", local.ifname, local.mac, local.ip,
                            local.prefix_len, local.mtu, local.gateway, tx_offload=not self.reconciler.cfg.userspace)

    def _rollback(self, endpoint_id: str) -> None:
        """Undo a failed add (the endpoint is claimed); every step is attempted even if an earlier one
        fails. The netmaster endpoint goes through the pending releases, so an outage cannot leak it."""
        self._owe_release(endpoint_id)
        self.local.delete(endpoint_id)
        self.source.note_deleted(endpoint_id)
        self._attempt(endpoint_id, self._sync_flows, lambda: self.reconciler.remove_endpoint_port(endpoint_id),
                      lambda: self._release(endpoint_id, conditional=False))

    @staticmethod
    def _attempt(endpoint_id: str, *steps: Callable[[], Any]) -> None:
        for step in steps:
            try:
                step()
            except Exception as exc:
                LOG.error("endpoint %s: rollback step failed: %s", endpoint_id, exc)

    # -- delete ---------------------------------------------------------------------------------------

    def delete(self, endpoint_id: str) -> bool:
        """Remove the endpoint everywhere; False if there was nothing to remove. Idempotent, and
        succeeds while netmaster is unreachable (the release is then kept and retried)."""
        if not endpoint_id:
            raise EndpointError("invalid", "endpoint id is required")
        with self._locked(endpoint_id):
            local = self.local.get(endpoint_id)
            if local is None and endpoint_id not in self.releases:
                # Not plumbed here; netmaster may still hold one for this host (an ADD that died between
                # netmaster's answer and the local record). Release it if its record names this host.
                if not self.source.netmaster_reachable:
                    self._owe_release(endpoint_id)
                    LOG.info("endpoint %s: not on this host; release (if netmaster holds it for this host) "
                             "pending until netmaster is back", endpoint_id)
                    return False
                try:
                    if not self._is_mine(endpoint_id):
                        return False  # never delete another host's endpoint
                except NetmasterError as exc:
                    if not isinstance(exc, NetmasterUnavailableError):
                        raise _from_netmaster(exc) from None
                    self._owe_release(endpoint_id)
                    return False
            if local is not None:
                self.reconciler.endpoint_leaving(local.ip)
            self._owe_release(endpoint_id)  # on disk before anything goes: a crash from here on still releases
            self._remove_host_side(endpoint_id)
            released = self._release(endpoint_id, conditional=local is None) if self.source.netmaster_reachable \
                else False
            LOG.info("endpoint %s deleted%s", endpoint_id,
                     "" if released else "; its release is pending until netmaster confirms it")
            return local is not None or released

    def _remove_host_side(self, endpoint_id: str) -> None:
        """Local record, flows, port and veth (the endpoint is locked)."""
        with self.reconciler.claim(endpoint_id):
            self.local.delete(endpoint_id)
            self.source.note_deleted(endpoint_id)
            try:
                self._sync_flows()
            except Exception as exc:  # the port goes below anyway; flows follow on the next reconcile
                LOG.error("endpoint %s: flow update after delete failed: %s", endpoint_id, exc)
            self.reconciler.remove_endpoint_port(endpoint_id)
        self.source.request_sync()

    # -- releases netmaster owes ----------------------------------------------------------------------

    def _owe_release(self, endpoint_id: str) -> None:
        self.releases.add(endpoint_id)
        self._gauge()
        self._release_wake.set()

    def _gauge(self) -> None:
        self.reconciler.metrics.pending_releases.set(len(self.releases))

    def _release(self, endpoint_id: str, conditional: bool = True) -> bool:
        """Release a pending endpoint in netmaster (the endpoint is locked); True once netmaster
        confirmed (or holds no endpoint of this host by that id), False if it stays pending.
        *conditional*: only if netmaster's record names this host (an id not plumbed here)."""
        try:
            if not conditional or self._is_mine(endpoint_id):
                self._delete_in_netmaster(endpoint_id)
        except NetmasterError as exc:
            LOG.warning("endpoint %s: release in netmaster pending (%s)", endpoint_id, exc.message)
            return False
        self.releases.discard(endpoint_id)
        self._gauge()
        LOG.info("endpoint %s released in netmaster", endpoint_id)
        return True

    def resume(self) -> None:
        """At start: finish the host side of deletes an agent crash interrupted (their release was
        recorded, their local record is still here), then retry the releases in the background."""
        for endpoint_id in self.releases.all():
            with self._locked(endpoint_id):
                if self.local.get(endpoint_id) is not None:
                    LOG.info("endpoint %s: finishing a delete interrupted by a restart", endpoint_id)
                    self._remove_host_side(endpoint_id)
        threading.Thread(target=self._retry_releases, name="endpoint-releases", daemon=True).start()

    def _retry_releases(self) -> None:
        """Until stopped with the process: release what is pending whenever netmaster is reachable (the
        source's heartbeat says so; a DEL never waits behind a retry bound to time out), backing off
        while netmaster refuses (woken at once by a new pending release)."""
        first, longest = self.RELEASE_RETRY
        delay = first
        while True:
            self._release_wake.wait(delay)
            self._release_wake.clear()
            pending = self.releases.all()
            if not pending or not self.source.netmaster_reachable:
                delay = first if pending else longest
                continue
            done = 0
            for endpoint_id in pending:
                with self._locked(endpoint_id):
                    if endpoint_id in self.releases:  # not settled meanwhile by a DEL or ADD
                        done += self._release(endpoint_id, conditional=self.local.get(endpoint_id) is None)
            delay = first if done == len(pending) else min(longest, delay * 2)

    def _is_mine(self, endpoint_id: str) -> bool:
        async def get(client: NetmasterClient) -> dict[str, Any] | None:
            try:
                return await client.request("GET", f"/api/v1/endpoints/{quote(endpoint_id, safe='')}/")
            except NetmasterError as exc:
                if exc.status == 404:
                    return None
                raise

        record = self.source.ops(get)
        return record is not None and record.get("host") == self.reconciler.cfg.host_label

    def _delete_in_netmaster(self, endpoint_id: str) -> bool:
        async def delete(client: NetmasterClient) -> bool:
            body = await client.request("DELETE", f"/api/v1/endpoints/{quote(endpoint_id, safe='')}/")
            return bool(body and body.get("deleted"))

        return self.source.ops(delete)

    # -- re-claim --------------------------------------------------------------------------------------

    def reclaim(self, endpoint_id: str) -> dict[str, Any] | None:
        """Create local endpoint *endpoint_id* in netmaster with its own address (a no-op answer if
        netmaster still has it); its record, or None if the local record is gone. Raises EndpointError
        ``conflict`` when its address or id went to another endpoint."""
        with self._locked(endpoint_id):
            local = self.local.get(endpoint_id)
            if local is None:
                return None
            spec = local.spec_fields()
            # a Docker IPAM reservation was consumed by the first create; ask for the address itself
            spec["labels"] = {k: v for k, v in local.labels.items() if k != CLAIM_LABEL}
            record = self._created(self._create_started(AddRequest(**spec, requested_ip=local.ip)))
            host = self.reconciler.cfg.host_label
            if (record.get("ipAddress"), record.get("host")) != (local.ip, host):
                raise EndpointError("conflict", f"netmaster holds endpoint {endpoint_id} with address "
                                                f"{record.get('ipAddress')} on host {record.get('host')}")
            self.source.note_endpoint(record)
        self.source.request_sync()
        return record

    # -- check, list, status --------------------------------------------------------------------------

    def check(self, endpoint_id: str) -> None:
        local = self.local.get(endpoint_id)
        if local is None:
            raise EndpointError("not_found", f"endpoint {endpoint_id} not found on this host")
        problem = self._problem(local)
        if problem:
            raise EndpointError("internal", f"endpoint {endpoint_id}: {problem}")

    def _problem(self, local: LocalEndpoint) -> str:
        """'' if the endpoint's veth, OVS port and container-side address are in place."""
        rec = self.reconciler
        error = rec.endpoint_errors.get(local.endpoint_id)
        if error:
            return f"plumbing failed: {error}"
        port = rec.ovsdb.ports(rec.cfg.bridge).get(local.host_ifname)
        if port is None or port.ofport <= 0:
            return f"OVS port {local.host_ifname} missing"
        if not rec.plumber.exists(local.endpoint_id):
            return f"veth {local.host_ifname} missing"
        if local.netns is not None:
            return rec.plumber.container_end_ok(self._link(local))
        return ""

    def list_local(self) -> list[LocalEndpoint]:
        return list(self.local.all().values())

    def status(self) -> tuple[bool, str]:
        if not self.source.synced:
            return False, "waiting for the first state from netmaster"
        if not self.source.netmaster_reachable:
            return False, "netmaster unreachable (serving the last known state)"
        if not self.reconciler.of.connected:
            return False, "Open vSwitch bridge not connected to the agent"
        return True, "ready"


def _validate(req: AddRequest) -> None:
    if not _ID_RE.fullmatch(req.endpoint_id or ""):
        raise EndpointError("invalid", f"endpoint id {req.endpoint_id!r} is invalid")
    if not req.tenant or not req.network:
        raise EndpointError("invalid", "tenant and network are required")
    if not _IFNAME_RE.fullmatch(req.ifname or ""):
        raise EndpointError("invalid", f"interface name {req.ifname!r} is invalid")
    if req.netns is not None and not os.path.exists(netns_path(req.netns)):
        raise EndpointError("invalid", f"network namespace {req.netns} does not exist")
    if req.requested_ip:
        try:
            ipaddress.IPv4Address(req.requested_ip)
        except ValueError:
            raise EndpointError("invalid", f"requested address {req.requested_ip!r} is invalid") from None


def _identity(x: AddRequest | LocalEndpoint) -> tuple[Any, ...]:
    return x.tenant, x.network, x.group, x.container_id, x.netns, x.ifname


def _result(local: LocalEndpoint) -> AddResult:
    return AddResult(endpoint_id=local.endpoint_id, ip=local.ip, prefix_len=local.prefix_len, mac=local.mac,
                     gateway=local.gateway, ifname=local.ifname, host_ifname=local.host_ifname,
                     container_ifname=local.container_ifname, mtu=local.mtu, netns=local.netns, vlan=local.vlan,
                     vni=local.vni, group_id=local.group_id)
