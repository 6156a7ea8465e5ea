"""Tenants: the namespace of every other object (Contiv's VRF)."""

from __future__ import annotations

from typing import Any

from netmaster.errors import ConflictError
from netmaster.model.catalog import TENANT
from netmaster.objects.base import Handler, Record, list_records
from netmaster.objects.endpoint_group import EndpointGroupHandler
from netmaster.objects.endpoint_list import endpoint_oper, endpoints_of
from netmaster.objects.network import NetworkHandler
from netmaster.objects.policy import PolicyHandler
from netmaster.objects.service_lb import ServiceLBHandler
from netmaster.store.txn import Txn

# Contiv refused a tenant delete while it held any of these, checked in this order.
_DEPENDENTS = (
    ("appProfile", "app profiles"),
    ("endpointGroup", "endpoint groups"),
    ("policy", "policies"),
    ("netprofile", "netprofiles"),
    ("network", "networks"),
    ("serviceLB", "services"),
    ("extContractsGroup", "external contracts groups"),
)


class TenantHandler(Handler):
    otype = TENANT
    immutable_message = "Cant change tenant parameters after its created"

    async def delete(self, txn: Txn, record: Record) -> None:
        for kind, words in _DEPENDENTS:
            found = await list_records(txn, kind, record.key)
            if found:
                names = ", ".join(r.key.split(":", 1)[1] for r in found)
                raise ConflictError(f"cannot delete {record.key} has {len(found)} {words}: {names}")

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        tenant = record.key
        networks = await list_records(txn, "network", tenant)
        groups = await list_records(txn, "endpointGroup", tenant)
        policies = await list_records(txn, "policy", tenant)
        services = await list_records(txn, "serviceLB", tenant)
        endpoints = await endpoints_of(txn, lambda ep: ep["tenantName"] == tenant)
        annotations = {k: record.status[k] for k in ("source", "apic") if k in record.status}
        return {
            **annotations,
            "totalNetworks": len(networks),
            "totalEPGs": len(groups),
            "totalNetprofiles": len(await list_records(txn, "netprofile", tenant)),
            "totalAppProfiles": len(await list_records(txn, "appProfile", tenant)),
            "totalServicelbs": len(services),
            "totalPolicies": len(policies),
            "totalEndpoints": len(endpoints),
            # Contiv lists each object with its oper state (NetworkOper, EndpointGroupOper, ...).
            "networks": [{"key": r.key, **await NetworkHandler().oper(txn, r)} for r in networks],
            "endpointGroups": [{"key": r.key, **await EndpointGroupHandler().oper(txn, r)} for r in groups],
            "policies": [{"key": r.key, **await PolicyHandler().oper(txn, r)} for r in policies],
            "servicelbs": [{"key": r.key, **await ServiceLBHandler().oper(txn, r)} for r in services],
            "endpoints": [endpoint_oper(ep) for ep in endpoints],
        }
