"""Endpoints: what agents create when a container joins a network, and delete when it leaves.

Creating one allocates its address (from the EPG's pool if the group has one) and its MAC (unique
across tenants: Contiv's ``02:02:<ip>`` unless another endpoint holds that address, see
contiv_api.mac; an index of MACs in use lives under ``/contiv/mac/``), and records everything the
agents need to program it; all in one transaction with the network's allocation record and the MAC
index, so counts, addresses and MACs never drift apart. Delete is idempotent: a retried or
late delete of a gone endpoint succeeds and releases nothing twice.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from contiv_api.mac import candidates
from contiv_api.netmaster_client import CLAIM_LABEL  # takes over the reservation it names
from contiv_api.service_lb import MAX_LABELS, RESERVED_LABELS, label_problem
from netmaster.errors import ConflictError, InvalidError, NotFoundError
from netmaster.objects.base import infra_type, require
from netmaster.objects.endpoint_list import endpoint_oper
from netmaster.objects.network import load_ipam, store_ipam
from netmaster.store import keys
from netmaster.store.base import Store
from netmaster.store.txn import KeyedLocks, Txn, read_only, run_txn

LOG = logging.getLogger(__name__)
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,254}")
_STR_FIELDS = {
    "endpointID": True,  # field -> required
    "tenantName": False,
    "networkName": True,
    "groupName": False,
    "containerID": False,
    "containerName": False,
    "host": False,
    "ipAddress": False,
    "intfName": False,
    "portName": False,
    "vtepIP": False,
}
#: In ACI mode an endpoint without a group joins this EPG, as in Contiv: the fabric classifies traffic
#: by EPG VLAN only, so a group-less container would be unreachable.
ACI_DEFAULT_GROUP = "default-group"
# Fields whose change on a repeated create means it is a different endpoint, not a retry.
_IDENTITY = ("tenantName", "networkName", "groupName", "containerID", "host")
RESERVATION_TTL = 300.0  # seconds an unclaimed reservation lives (a runtime crashed before its endpoint)


def parse_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidError("endpoint: request body must be a JSON object")
    unknown = sorted(set(body) - set(_STR_FIELDS) - {"labels"})
    if unknown:
        raise InvalidError(f"endpoint: unknown field(s): {', '.join(unknown)}")
    req: dict[str, Any] = {}
    for field, required in _STR_FIELDS.items():
        value = body.get(field, "")
        if not isinstance(value, str):
            raise InvalidError(f"{field} must be a string")
        if len(value) > 256:
            raise InvalidError(f"{field} string too long")
        if required and not value:
            raise InvalidError(f"{field} is required")
        req[field] = value
    req["tenantName"] = req["tenantName"] or "default"
    if not _ID_RE.fullmatch(req["endpointID"]):
        raise InvalidError("endpointID string invalid format")
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidError("labels must be an object of strings")
    req["labels"] = labels
    return req


def parse_labels_request(body: Any) -> tuple[str, dict[str, str]]:
    """``{"host": H, "labels": {k: v}}`` -> (H, labels): user labels (contiv_api.service_lb.label_problem)."""
    if not isinstance(body, dict):
        raise InvalidError("endpoint labels: request body must be a JSON object")
    unknown = sorted(set(body) - {"host", "labels"})
    if unknown:
        raise InvalidError(f"endpoint labels: unknown field(s): {', '.join(unknown)}")
    host, labels = body.get("host"), body.get("labels")
    if not isinstance(host, str) or not host or len(host) > 256:
        raise InvalidError("endpoint labels: host is required (the agent's host name)")
    if not isinstance(labels, dict):
        raise InvalidError("endpoint labels: labels must be an object of strings")
    if len(labels) > MAX_LABELS:
        raise InvalidError(f"endpoint labels: at most {MAX_LABELS} labels")
    for key, value in labels.items():
        problem = label_problem(key, value)
        if problem:
            raise InvalidError(f"endpoint labels: {problem}")
    return host, labels


async def _effective_group(txn: Txn, req: dict[str, Any]) -> str:
    """The endpoint's group: as requested, or in ACI mode ``default-group`` when none is given.

    A tenant without ``default-group`` refuses group-less endpoints in ACI mode (404 naming the fix)
    rather than attaching them untagged to a VLAN the fabric does not bind to any EPG.
    """
    if req["groupName"] or await infra_type(txn) != "aci":
        return req["groupName"]
    tenant = req["tenantName"]
    await require(
        txn,
        "endpointGroup",
        f"{tenant}:{ACI_DEFAULT_GROUP}",
        f"ACI mode: an endpoint without a group joins endpoint group {ACI_DEFAULT_GROUP}, which tenant {tenant} "
        f"does not have; create it on network {req['networkName']} or give the endpoint a group",
    )
    return ACI_DEFAULT_GROUP


class EndpointService:
    def __init__(self, store: Store, pools: KeyedLocks | None = None) -> None:
        self.store = store
        self.pools = pools or KeyedLocks()  # this process's allocations queue per network

    async def create(self, body: Any) -> tuple[dict[str, Any], int]:
        req = parse_request(body)

        async def op(txn: Txn) -> dict[str, Any]:
            key = keys.endpoint(req["endpointID"])
            existing = await txn.get(key)
            wanted = {**req, "groupName": await _effective_group(txn, req)}
            if existing is not None:
                if all(existing.get(f, "") == wanted[f] for f in _IDENTITY):
                    return existing
                raise ConflictError(f"endpoint {req['endpointID']} already exists")
            return await self._create(txn, wanted)

        async with self.pools.hold(f"{req['tenantName']}:{req['networkName']}"):
            return await run_txn(self.store, op)

    async def _create(self, txn: Txn, req: dict[str, Any]) -> dict[str, Any]:
        tenant, net_name, group = req["tenantName"], req["networkName"], req["groupName"]
        network = await require(txn, "network", f"{tenant}:{net_name}", f"Network {tenant}:{net_name} not found")
        group_id = 0
        group_tag = network.status["pktTag"]
        if group:
            epg = await require(txn, "endpointGroup", f"{tenant}:{group}", f"EndpointGroup {tenant}:{group} not found")
            if epg.config["networkName"] != net_name:
                raise InvalidError(f"endpoint group {group} belongs to network {epg.config['networkName']}")
            group_id = epg.status["endpointGroupId"]
            group_tag = epg.status["pktTag"]
        ipam = await load_ipam(txn, network)
        claim = req["labels"].get(CLAIM_LABEL)
        if claim:
            offset = await _claim(txn, ipam, claim, req, group)
        else:
            offset = ipam.allocate(req["ipAddress"], group)
            ipam.endpoints += 1
        if group:
            ipam.group_endpoints[group] = ipam.group_endpoints.get(group, 0) + 1
        store_ipam(txn, network.key, ipam)
        ip = ipam.subnet.address(offset)
        mac = await _free_mac(txn, ip)
        txn.put(keys.mac(mac), {"endpointID": req["endpointID"]})
        record = {
            **req,
            "ipAddress": ip,
            "macAddress": mac,
            "subnet": ipam.subnet.cidr,
            "subnetLen": ipam.subnet.length,
            "gateway": network.config["gateway"],
            "encap": network.config["encap"],
            "pktTag": network.status["pktTag"],
            "externalPktTag": network.status["externalPktTag"],
            "endpointGroupId": group_id,
            "groupPktTag": group_tag,
            "createdAt": time.time(),
        }
        txn.put(keys.endpoint(req["endpointID"]), record)
        await _keep_in_span(txn, req["host"], network.key)
        return record

    async def delete(self, endpoint_id: str) -> tuple[bool, int]:
        """Remove an endpoint and release its address; (False, rev) if it was already gone."""

        async def op(txn: Txn) -> bool:
            return await release_endpoint(txn, endpoint_id) is not None

        return await run_txn(self.store, op)

    async def set_labels(self, endpoint_id: str, body: Any) -> tuple[dict[str, Any], int]:
        """Replace an endpoint's user labels (``PUT /api/v1/endpoints/{id}/labels``): what services
        select providers by, learnt after the endpoint exists (a Docker container's own labels). Only the
        agent of the endpoint's host may: ``host`` must be the endpoint's. The ``io.contiv.*`` labels are
        netmaster's and the agent's own (the reservation claim): never given here, kept as they are."""
        host, labels = parse_labels_request(body)

        async def op(txn: Txn) -> dict[str, Any]:
            key = keys.endpoint(endpoint_id)
            ep = await txn.get(key)
            if ep is None:
                raise NotFoundError(f"endpoint {endpoint_id} not found")
            if ep.get("host", "") != host:
                raise ConflictError(f"endpoint {endpoint_id} belongs to host {ep.get('host', '')!r}, not {host!r}")
            kept = {k: v for k, v in (ep.get("labels") or {}).items() if k.startswith(RESERVED_LABELS)}
            wanted = {**labels, **kept}
            if (ep.get("labels") or {}) == wanted:
                return ep  # unchanged: no write, no watch event
            record = {**ep, "labels": wanted}
            txn.put(key, record)
            return record

        return await run_txn(self.store, op)

    async def index_macs(self) -> int:
        """Put the MAC of every endpoint missing from the MAC index into it (endpoints created before
        the index existed); how many were added. Run at start-up, before the API serves creates."""
        added = 0
        held = {kv.key[len(keys.MAC):]: json.loads(kv.value).get("endpointID")
                for kv in (await self.store.list(keys.mac()))[0]}
        for ep in (await self.list())[0]:
            mac, endpoint_id = ep.get("macAddress", ""), ep["endpointID"]
            if held.get(mac) == endpoint_id:
                continue  # the common case: one list of each, no transaction

            async def op(txn: Txn, mac: str = mac, endpoint_id: str = endpoint_id) -> bool:
                holder = await txn.get(keys.mac(mac))
                if holder is None:
                    txn.put(keys.mac(mac), {"endpointID": endpoint_id})
                    return True
                if holder.get("endpointID") != endpoint_id:
                    LOG.warning("endpoints %s and %s share MAC %s (created before MACs were unique); "
                                "recreate one of them", holder.get("endpointID"), endpoint_id, mac)
                return False

            if mac:
                added += (await run_txn(self.store, op))[0]
        return added

    async def get(self, endpoint_id: str) -> dict[str, Any]:
        ep = await read_only(self.store, lambda txn: txn.get(keys.endpoint(endpoint_id)))
        if ep is None:
            raise NotFoundError(f"endpoint {endpoint_id} not found")
        return ep

    async def list(self) -> tuple[list[dict[str, Any]], int]:
        kvs, revision = await self.store.list(keys.endpoint())
        return [json.loads(kv.value) for kv in kvs], revision

    async def inspect(self, pattern: str) -> dict[str, Any]:
        """Contiv's endpoint inspect: first endpoint whose id, container id or name contains ``pattern``."""
        endpoints, _ = await self.list()
        for ep in endpoints:
            if any(pattern in ep.get(f, "") for f in ("endpointID", "containerID", "containerName")):
                return {"Oper": endpoint_oper(ep)}
        raise NotFoundError(f"endpoint {pattern} not found")


async def _keep_in_span(txn: Txn, host: str, network_key: str) -> None:
    """In ``txn``: note that ``host`` has (had) an endpoint on the network, so its agent keeps receiving
    the network's endpoints (netmaster.api.span). Written once per host and network."""
    if not host:
        return
    kept = (await txn.get(keys.span(host))) or {}
    networks = kept.get("networks") or []
    if network_key not in networks:
        txn.put(keys.span(host), {"networks": sorted({*networks, network_key})})


async def release_endpoint(txn: Txn, endpoint_id: str) -> dict[str, Any] | None:
    """In ``txn``: delete an endpoint and release its address and counts; its record, None if it is gone."""
    ep = await txn.get(keys.endpoint(endpoint_id))
    if ep is None:
        return None
    network = await require(txn, "network", f"{ep['tenantName']}:{ep['networkName']}")
    ipam = await load_ipam(txn, network)
    offset = ipam.subnet.offset(ep["ipAddress"])
    group = ep.get("groupName", "")
    if offset is not None:
        ipam.release(offset, group)
    ipam.endpoints = max(ipam.endpoints - 1, 0)
    if group and ipam.group_endpoints.get(group):
        ipam.group_endpoints[group] -= 1
    store_ipam(txn, network.key, ipam)
    mac = ep.get("macAddress", "")
    if mac and ((await txn.get(keys.mac(mac))) or {}).get("endpointID") == endpoint_id:
        txn.delete(keys.mac(mac))
    txn.delete(keys.endpoint(endpoint_id))
    return ep


async def _free_mac(txn: Txn, ip: str) -> str:
    """The first MAC of the rule for *ip* that no endpoint holds (each probe is a read of this
    transaction, so two creates racing for one MAC cannot both commit)."""
    for mac in candidates(ip):
        if await txn.get(keys.mac(mac)) is None:
            return mac
    raise ConflictError(f"no free MAC for address {ip}: every MAC prefix is held by an endpoint with it")


async def _claim(txn: Txn, ipam: Any, reservation_id: str, req: dict[str, Any], group: str) -> int:
    """Turn a reservation into this endpoint's address, in the endpoint's transaction: the address is
    never free in between, so nobody else can take it. The reservation already counts as an endpoint."""
    resv = await txn.get(keys.reservation(reservation_id))
    if resv is None:
        raise ConflictError(f"address reservation {reservation_id} does not exist (expired or released)")
    if (resv["tenantName"], resv["networkName"]) != (req["tenantName"], req["networkName"]) or (
        req["ipAddress"] and req["ipAddress"] != resv["ipAddress"]
    ):
        raise ConflictError(f"address reservation {reservation_id} is for another network or address")
    if group in ipam.pools:
        raise ConflictError(f"endpoint group {group} has its own ipPool: reserve from the group instead")
    req["ipAddress"] = resv["ipAddress"]
    txn.delete(keys.reservation(reservation_id))
    return ipam.subnet.offset(resv["ipAddress"])


class ReservationService:
    """Addresses reserved before their endpoint exists.

    Docker asks its IPAM driver for an address before it creates the endpoint, and may never come
    back (a crash, an aborted ``docker run``). A reservation holds the address in the network's IPAM
    record, counts as an endpoint (the network cannot be deleted under it), and is either claimed by
    the endpoint created with label ``io.contiv.reservation=<id>``, released (idempotently), or,
    unclaimed, swept after its TTL by the next reservation in the same network. The id is
    ``tenant:network:ip``, so a release needs nothing but the address. Reserving a given address twice
    is a 409, even for the same owner: two containers asking for one address must not both get it.
    """

    def __init__(self, store: Store, ttl: float = RESERVATION_TTL, pools: KeyedLocks | None = None) -> None:
        self.store = store
        self.ttl = ttl
        self.pools = pools or KeyedLocks()  # shared with EndpointService: one queue per network

    async def create(self, body: Any) -> tuple[dict[str, Any], int]:
        if not isinstance(body, dict):
            raise InvalidError("reservation: request body must be a JSON object")
        unknown = sorted(set(body) - {"tenantName", "networkName", "ipAddress", "owner"})
        if unknown:
            raise InvalidError(f"reservation: unknown field(s): {', '.join(unknown)}")
        if not all(isinstance(v, str) and len(v) <= 256 for v in body.values()):
            raise InvalidError("reservation: fields must be strings")
        tenant, net_name = body.get("tenantName") or "default", body.get("networkName", "")
        if not net_name:
            raise InvalidError("networkName is required")
        requested, owner = body.get("ipAddress", ""), body.get("owner", "")

        async def op(txn: Txn) -> dict[str, Any]:
            network = await require(txn, "network", f"{tenant}:{net_name}", f"Network {tenant}:{net_name} not found")
            ipam = await load_ipam(txn, network)
            now = time.time()
            for key, resv in await txn.list(keys.reservation(f"{tenant}:{net_name}:")):
                if resv["expiresAt"] < now:
                    _release(ipam, resv)
                    txn.delete(key)
            offset = ipam.allocate(requested)
            ipam.endpoints += 1
            store_ipam(txn, network.key, ipam)
            ip = ipam.subnet.address(offset)
            record = {
                "reservationID": f"{tenant}:{net_name}:{ip}",
                "tenantName": tenant,
                "networkName": net_name,
                "ipAddress": ip,
                "subnetLen": ipam.subnet.length,
                "gateway": network.config["gateway"],
                "owner": owner,
                "createdAt": now,
                "expiresAt": now + self.ttl,
            }
            txn.put(keys.reservation(record["reservationID"]), record)
            return record

        async with self.pools.hold(f"{tenant}:{net_name}"):
            return await run_txn(self.store, op)

    async def delete(self, reservation_id: str) -> tuple[bool, int]:
        """Release a reservation; (False, rev) when it is gone already (claimed, released, expired)."""

        async def op(txn: Txn) -> bool:
            return await _drop_reservation(txn, reservation_id) is not None

        return await run_txn(self.store, op)

    async def list(self) -> tuple[list[dict[str, Any]], int]:
        kvs, revision = await self.store.list(keys.reservation())
        return [json.loads(kv.value) for kv in kvs], revision

    async def sweep_expired(self) -> list[dict[str, Any]]:
        """Release every reservation past its TTL, in any network (the leader's garbage collector
        calls this; a new reservation only sweeps its own network). The released records."""
        now = time.time()
        expired = [r for r in (await self.list())[0] if r["expiresAt"] < now]
        released = []
        for resv in expired:

            async def op(txn: Txn, reservation_id: str = resv["reservationID"]) -> dict[str, Any] | None:
                return await _drop_reservation(txn, reservation_id, expired_before=now)

            record, _ = await run_txn(self.store, op)
            if record is not None:
                released.append(record)
        return released


async def _drop_reservation(
    txn: Txn, reservation_id: str, *, expired_before: float | None = None
) -> dict[str, Any] | None:
    """In ``txn``: delete a reservation and free its address (only if it expired before
    ``expired_before``, when given); the record, or None if it is gone (claimed, released) or still valid."""
    resv = await txn.get(keys.reservation(reservation_id))
    if resv is None or (expired_before is not None and resv["expiresAt"] >= expired_before):
        return None
    network = await require(txn, "network", f"{resv['tenantName']}:{resv['networkName']}")
    ipam = await load_ipam(txn, network)
    _release(ipam, resv)
    store_ipam(txn, network.key, ipam)
    txn.delete(keys.reservation(reservation_id))
    return resv


def _release(ipam: Any, resv: dict[str, Any]) -> None:
    offset = ipam.subnet.offset(resv["ipAddress"])
    if offset is not None:
        ipam.release(offset)
    ipam.endpoints = max(ipam.endpoints - 1, 0)
