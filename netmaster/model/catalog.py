"""Contiv's object catalogue: every object type, its REST collection, key and config fields.

One :class:`ObjectType` per Contiv object (``contivmodel/*.json``). The REST routes, the request
schemas in the OpenAPI document and the parsing of request bodies are all derived from this table,
so adding a field means adding one line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netmaster.errors import InvalidError
from netmaster.model import fields as f
from netmaster.model.fields import Field

# Keys a client may send back unchanged after a GET (``netctl global set`` does GET then POST).
_SERVER_KEYS = frozenset({"key", "links", "link-sets", "source"})


@dataclass(frozen=True)
class ObjectType:
    kind: str  # Contiv's model name, also the store path segment: "endpointGroup", "Bgp"
    plural: str  # REST collection: "endpointGroups", "policys", "Bgps"
    key_fields: tuple[str, ...]
    fields: tuple[Field, ...]
    singleton: str | None = None  # the only key allowed ("global", "aciGw")
    title: str = ""
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {fl.name: fl for fl in self.fields})

    def make_key(self, config: dict[str, Any]) -> str:
        return ":".join(str(config.get(k, "")) for k in self.key_fields)

    def parse(self, url_key: str, body: Any) -> dict[str, Any]:
        """Turn a request body into a validated config dict, Contiv's checks in Contiv's order.

        Missing key fields are taken from the URL key; present ones must agree with it ("Invalid Key").
        """
        if not isinstance(body, dict):
            raise InvalidError(f"{self.kind}: request body must be a JSON object")
        unknown = sorted(set(body) - set(self.by_name) - _SERVER_KEYS)
        if unknown:
            raise InvalidError(f"{self.kind}: unknown field(s): {', '.join(unknown)}")
        if self.singleton is not None and url_key != self.singleton:
            raise InvalidError(f"{self.kind} key must be {self.singleton!r}")
        config: dict[str, Any] = {}
        for fl in self.fields:
            value = body.get(fl.name)
            config[fl.name] = fl.default_value() if value is None else _typed(fl, value)
        parts = url_key.split(":")
        if len(parts) == len(self.key_fields):
            for key_field, part in zip(self.key_fields, parts, strict=True):
                if config[key_field] == "":
                    config[key_field] = part
        if self.make_key(config) != url_key:
            raise InvalidError("Invalid Key")
        for fl in self.fields:
            config[fl.name] = fl.check(config[fl.name])
        return config

    def request_schema(self) -> dict[str, Any]:
        props = {fl.name: fl.json_schema() for fl in self.fields}
        props["key"] = {"type": "string", "description": "ignored: the URL names the object"}
        return {
            "title": self.title or self.kind,
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }


def _typed(fl: Field, value: Any) -> Any:
    ok = (
        (fl.kind is str and isinstance(value, str))
        or (fl.kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (fl.kind is list and isinstance(value, list) and all(isinstance(v, str) for v in value))
    )
    if not ok:
        expected = {str: "a string", int: "an integer", list: "a list of strings"}[fl.kind]
        raise InvalidError(f"{fl.name} must be {expected}")
    return list(value) if fl.kind is list else value


TENANT = ObjectType(
    "tenant",
    "tenants",
    ("tenantName",),
    (f.name("tenantName"), f.optional_name("defaultNetwork")),
)

NETWORK = ObjectType(
    "network",
    "networks",
    ("tenantName", "networkName"),
    (
        f.name("tenantName"),
        f.name("networkName"),
        Field("nwType", str, r"^(infra|data)$", default="data"),
        Field("encap", str, r"^(vlan|vxlan)$", required=True),
        Field("pktTag", int, min=0, max=16777216, description="VLAN id or VXLAN VNI; 0 = allocate"),
        Field("subnet", str, f.SUBNET_RE, required=True, description="a.b.c.d[-e.f.g.h]/len"),
        Field("gateway", str, f.IPV4_OR_EMPTY_RE),
        Field("ipv6Subnet", str, f.IPV6_SUBNET_RE),
        Field("ipv6Gateway", str, f.IPV6_OR_EMPTY_RE),
        f.optional_name("cfgdTag", 128),
        Field("hostAccess", str, r"^(enabled|disabled)$", default="enabled",
              description="not in Contiv: containers reach their host and, source-NATed, the outside "
              "(docs/host-access.md); the one field an update may change"),
    ),
)

ENDPOINT_GROUP = ObjectType(
    "endpointGroup",
    "endpointGroups",
    ("tenantName", "groupName"),
    (
        f.name("tenantName"),
        f.name("groupName"),
        f.name("networkName"),
        Field("ipPool", str, f.IP_POOL_RE),
        Field("policies", list, f.NAME_RE, 64),
        Field("extContractsGrps", list, f.NAME_RE, 64),
        f.optional_name("netProfile"),
        f.optional_name("cfgdTag", 128),
    ),
    title="endpointGroup",
)

POLICY = ObjectType("policy", "policys", ("tenantName", "policyName"), (f.name("tenantName"), f.name("policyName")))

RULE = ObjectType(
    "rule",
    "rules",
    ("tenantName", "policyName", "ruleId"),
    (
        f.name("tenantName"),
        f.name("policyName"),
        f.name("ruleId"),
        Field("direction", str, r"^(in|out)$", required=True),
        Field("priority", int, min=0, max=100, default=1),
        f.optional_name("fromEndpointGroup"),
        f.optional_name("toEndpointGroup"),
        f.optional_name("fromNetwork"),
        f.optional_name("toNetwork"),
        Field("fromIpAddress", str, f.RULE_IP_RE),
        Field("toIpAddress", str, f.RULE_IP_RE),
        Field("protocol", str, r"^(tcp|udp|icmp||[0-9]{1,3}?)$"),
        Field("port", int, min=0, max=65535),
        Field("action", str, r"^(allow|deny)$", required=True),
    ),
)

APP_PROFILE = ObjectType(
    "appProfile",
    "appProfiles",
    ("tenantName", "appProfileName"),
    (f.name("tenantName"), f.name("appProfileName"), Field("endpointGroups", list, f.NAME_RE, 64)),
)

NETPROFILE = ObjectType(
    "netprofile",
    "netprofiles",
    ("tenantName", "profileName"),
    (
        f.name("tenantName"),
        Field("profileName", str, None, 64, required=True),
        Field("bandwidth", str, f.BANDWIDTH_RE, 64),
        Field("DSCP", int, min=0, max=63),
        Field("burst", int, min=0, max=10486),
    ),
)

EXT_CONTRACTS_GROUP = ObjectType(
    "extContractsGroup",
    "extContractsGroups",
    ("tenantName", "contractsGroupName"),
    (
        f.name("tenantName"),
        f.name("contractsGroupName"),
        Field("contractsType", str, None, 64),
        Field("contracts", list, None, 1024),
    ),
)

SERVICE_LB = ObjectType(
    "serviceLB",
    "serviceLBs",
    ("tenantName", "serviceName"),
    (
        f.name("tenantName"),
        f.name("serviceName", 256),
        f.name("networkName"),
        Field("ipAddress", str, f.IPV4_OR_EMPTY_RE, 15),
        Field("selectors", list, None, 256),
        Field("ports", list, None, 64),
        # Not in Contiv's model: client-IP affinity, seconds a client keeps its provider after its last
        # new connection (0: none). The agents learn it in flows (docs/services.md).
        Field("affinityTimeout", int, min=0, max=65535,
              description="client-IP affinity: seconds a client keeps its provider (0: none)"),
    ),
)

BGP = ObjectType(
    "Bgp",
    "Bgps",
    ("hostname",),
    (
        f.name("hostname", 256),
        Field("routerip", str, rf"^{f.IPV4}/([0-9]|[12][0-9]|3[0-2])$", required=True),
        Field("as", str, r"^[0-9]*$", 64),
        Field("neighbor-as", str, r"^[0-9]*$", 64),
        # Contiv's regex takes one address; a comma-separated list (several ToRs, docs/bgp.md) is ours.
        Field("neighbor", str, rf"^({f.IPV4}(,{f.IPV4})*)?$"),
        # Not in Contiv's model: also announce the subnet of each network with an endpoint on the host.
        Field("announce-subnets", str, r"^(yes|no)?$",
              description="L3 mode: also announce each network's subnet from the hosts holding its endpoints "
                          "(yes; default no: /32s only)"),
    ),
)

GLOBAL = ObjectType(
    "global",
    "globals",
    ("name",),
    (
        Field("name", str, r"^global$", required=True),
        Field("networkInfraType", str, r"^(aci|aci-opflex|default)?$"),
        Field("vlans", str, r"^([0-9]{1,4}?-[0-9]{1,4}?)$", required=True),
        Field("vxlans", str, r"^([0-9]{1,8}?-[0-9]{1,8}?)$", required=True),
        Field("fwdMode", str, r"^(bridge|routing)?$"),
        Field("arpMode", str, r"^(proxy|flood)?$"),
        Field("pvtSubnet", str, f.PVT_SUBNET_RE, required=True),
    ),
    singleton="global",
)

ACI_GW = ObjectType(
    "aciGw",
    "aciGws",
    ("name",),
    (
        Field("name", str, r"^aciGw$", required=True),
        Field("pathBindings", str, f.PATH_BINDINGS_RE, 2048),
        Field("nodeBindings", str, f.NODE_BINDINGS_RE, 2048),
        Field("physicalDomain", str, f.NAME_RE, 128, required=True),
        Field("enforcePolicies", str, r"^(yes|no)$", required=True),
        Field("includeCommonTenant", str, r"^(yes|no)$", required=True),
    ),
    singleton="aciGw",
)

OBJECT_TYPES: tuple[ObjectType, ...] = (
    TENANT,
    NETWORK,
    ENDPOINT_GROUP,
    POLICY,
    RULE,
    APP_PROFILE,
    NETPROFILE,
    EXT_CONTRACTS_GROUP,
    SERVICE_LB,
    BGP,
    GLOBAL,
    ACI_GW,
)
BY_KIND: dict[str, ObjectType] = {t.kind: t for t in OBJECT_TYPES}
BY_PLURAL: dict[str, ObjectType] = {t.plural: t for t in OBJECT_TYPES}
