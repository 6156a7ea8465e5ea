"""The layout of netmaster's state in the store, in one place.

``/contiv/obj/<kind>/<key>``        an object: ``{"config": {...}, "status": {...}}`` (watched by agents)
``/contiv/ep/<endpointID>``         an endpoint record (watched by agents)
``/contiv/gen/<collection>``        generation counters guarding collection membership (see txn.Txn.list)
``/contiv/alloc/<pool>``            allocator state: VLANs, VNIs, local VLANs, EPG ids
``/contiv/ipam/<tenant>:<network>`` a network's address allocations and endpoint counts
``/contiv/resv/<tenant>:<network>:<ip>`` an address reserved before its endpoint exists (Docker IPAM)
``/contiv/mac/<mac>``               the endpoint holding a MAC (MACs are unique across tenants: contiv_api.mac)
``/contiv/span/<hostLabel>``        networks the host ever had endpoints on (netmaster.api.span; never removed)
``/contiv/agents/<hostLabel>``      a live agent (VTEP, control address), on a lease (watched by agents)
``/contiv/aci/appProfile/<key>``    ACI mode: push state of an app profile (pending, synced, failed)
``/contiv/aci/tenantImport``        ACI mode: outcome of the last import of tenants from the APIC
"""

from __future__ import annotations

ROOT = "/contiv/"
OBJ = ROOT + "obj/"
EP = ROOT + "ep/"
GEN = ROOT + "gen/"
ALLOC = ROOT + "alloc/"
IPAM = ROOT + "ipam/"
RESV = ROOT + "resv/"
MAC = ROOT + "mac/"
AGENTS = ROOT + "agents/"
SPAN = ROOT + "span/"
ACI = ROOT + "aci/"
ACI_SYNC = ACI + "appProfile/"
ACI_TENANT_IMPORT = ACI + "tenantImport"


def obj(kind: str, key: str = "") -> str:
    return f"{OBJ}{kind}/{key}"


def obj_prefix(kind: str, tenant: str | None = None) -> str:
    """Objects of ``kind``, optionally only those of one tenant (keys start ``tenant:``)."""
    return f"{OBJ}{kind}/" + (f"{tenant}:" if tenant is not None else "")


def generation(kind: str) -> str:
    return f"{GEN}{kind}"


def endpoint(endpoint_id: str = "") -> str:
    return f"{EP}{endpoint_id}"


def alloc(pool: str) -> str:
    return f"{ALLOC}{pool}"


def ipam(network_key: str) -> str:
    return f"{IPAM}{network_key}"


def reservation(reservation_id: str = "") -> str:
    return f"{RESV}{reservation_id}"


def mac(address: str = "") -> str:
    return f"{MAC}{address}"


def agent(host: str = "") -> str:
    return f"{AGENTS}{host}"


def span(host: str) -> str:
    return f"{SPAN}{host}"


def aci_sync(app_profile_key: str = "") -> str:
    return f"{ACI_SYNC}{app_profile_key}"
