"""Policies and their rules: Contiv's allow/deny rules between groups, networks and addresses."""

from __future__ import annotations

from typing import Any

from netmaster.errors import ConflictError, InvalidError
from netmaster.model.catalog import POLICY, RULE
from netmaster.objects.base import Handler, Record, infra_type, list_records, require
from netmaster.objects.endpoint_list import endpoint_oper, endpoints_of
from netmaster.store import keys
from netmaster.store.txn import Txn


async def groups_using(txn: Txn, tenant: str, policy: str) -> list[Record]:
    return [g for g in await list_records(txn, "endpointGroup", tenant) if policy in g.config["policies"]]


class PolicyHandler(Handler):
    otype = POLICY

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        tenant = config["tenantName"]
        await require(txn, "tenant", tenant, f"Tenant {tenant} not found")
        return {}

    async def delete(self, txn: Txn, record: Record) -> None:
        tenant, name = record.config["tenantName"], record.config["policyName"]
        users = [g.key for g in await groups_using(txn, tenant, name)]
        if users:
            raise ConflictError(f"Policy is being used by endpoint group(s) {', '.join(users)}")
        rules = [r for r in await list_records(txn, "rule", tenant) if r.config["policyName"] == name]
        for rule in rules:
            txn.delete(keys.obj("rule", rule.key))
        if rules:
            await txn.bump(keys.generation("rule"))

    async def oper(self, txn: Txn, record: Record) -> dict[str, Any]:
        tenant = record.config["tenantName"]
        groups = {g.config["groupName"] for g in await groups_using(txn, tenant, record.config["policyName"])}
        endpoints = await endpoints_of(txn, lambda ep: ep["tenantName"] == tenant and ep.get("groupName") in groups)
        return {
            "numEndpoints": len(endpoints),
            "policyViolations": 0,
            "endpoints": [endpoint_oper(ep) for ep in endpoints],
        }


def check_rule_shape(config: dict[str, Any]) -> None:
    """Contiv's direction rules: what an ``in`` or ``out`` rule may name."""
    c = config
    if c["direction"] == "in":
        if c["toEndpointGroup"] or c["toNetwork"]:
            raise InvalidError("can not specify 'to' endpoint group or network in an incoming rule")
        if c["fromNetwork"] and (c["fromIpAddress"] or c["fromEndpointGroup"]):
            raise InvalidError("can not specify 'from' network together with 'from' ip address or group")
    else:
        if c["fromEndpointGroup"] or c["fromNetwork"] or c["fromIpAddress"]:
            raise InvalidError("can not specify 'from' parameters in an outgoing rule")
        if c["toNetwork"] and (c["toIpAddress"] or c["toEndpointGroup"]):
            raise InvalidError("can not specify 'to' network together with 'to' ip address or group")
    if c["port"] and c["protocol"] not in ("tcp", "udp"):
        raise InvalidError("a port requires protocol tcp or udp")


class RuleHandler(Handler):
    otype = RULE
    immutable_message = "can not update a rule after its created"

    async def create(self, txn: Txn, config: dict[str, Any]) -> dict[str, Any]:
        tenant = config["tenantName"]
        policy_key = f"{tenant}:{config['policyName']}"
        await require(txn, "policy", policy_key, f"Policy {policy_key} not found")
        check_rule_shape(config)
        if await infra_type(txn) == "aci" and any(
            config[f] for f in ("fromNetwork", "toNetwork", "fromIpAddress", "toIpAddress")
        ):
            raise InvalidError("only From/ToEndpointGroup may be specified in ACI mode")
        for field, kind in (
            ("fromEndpointGroup", "endpointGroup"),
            ("toEndpointGroup", "endpointGroup"),
            ("fromNetwork", "network"),
            ("toNetwork", "network"),
        ):
            if config[field]:
                key = f"{tenant}:{config[field]}"
                await require(txn, kind, key, f"{kind} {key} not found")
        if config["direction"] == "in" and config["toIpAddress"]:
            await _check_k8s_style_target(txn, config)
        return {}


async def _check_k8s_style_target(txn: Txn, config: dict[str, Any]) -> None:
    """An ``in`` rule naming a destination IP: it must be an endpoint of the policy's only group."""
    tenant = config["tenantName"]
    groups = await groups_using(txn, tenant, config["policyName"])
    if len(groups) != 1:
        raise InvalidError("an incoming rule with a 'to' ip address needs its policy attached to exactly one group")
    group = groups[0].config["groupName"]
    ip = config["toIpAddress"]
    members = await endpoints_of(
        txn, lambda ep: ep["tenantName"] == tenant and ep.get("groupName") == group and ep["ipAddress"] == ip
    )
    if not members:
        raise InvalidError(f"'to' ip address {ip} is not an endpoint of group {group}")
