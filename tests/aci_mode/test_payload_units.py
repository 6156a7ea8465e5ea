"""The v1.2 payload builder: Contiv's contract derivation (reference contiv.md §6.3), on plain objects."""

from __future__ import annotations

from typing import Any

import pytest

from contiv_api.aci_gw_payload import parse_app_profile
from netmaster.aci.payload import BuildError, ObjectView, build_payload, gw_cidr, payload_hash

T = "t1"


class Objects:
    """Just enough netmaster objects, in the stored shape {"config", "status"}."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, dict[str, Any]]] = {}
        self._vlan = 100

    def put(self, kind: str, key: str, config: dict[str, Any], status: dict[str, Any] | None = None) -> None:
        self.data.setdefault(kind, {})[key] = {"config": config, "status": status or {}}

    def network(self, name: str, subnet: str = "10.1.1.0/24", gateway: str = "10.1.1.1") -> None:
        self.put(
            "network",
            f"{T}:{name}",
            {"tenantName": T, "networkName": name, "subnet": subnet, "gateway": gateway, "encap": "vlan"},
        )

    def group(self, name: str, network: str = "net", policies: tuple[str, ...] = (), ext: tuple[str, ...] = ()) -> None:
        self._vlan += 1
        self.put(
            "endpointGroup",
            f"{T}:{name}",
            {
                "tenantName": T,
                "groupName": name,
                "networkName": network,
                "policies": list(policies),
                "extContractsGrps": list(ext),
            },
            {"aciVlan": self._vlan, "pktTag": self._vlan},
        )

    def rule(self, policy: str, rule_id: str, direction: str = "in", action: str = "allow", **kw: Any) -> None:
        config = {
            "tenantName": T,
            "policyName": policy,
            "ruleId": rule_id,
            "direction": direction,
            "action": action,
            "fromEndpointGroup": "",
            "toEndpointGroup": "",
            "protocol": "",
            "port": 0,
        }
        config.update(kw)
        self.put("rule", f"{T}:{policy}:{rule_id}", config)

    def profile(self, *groups: str, name: str = "app") -> str:
        self.put("appProfile", f"{T}:{name}", {"tenantName": T, "appProfileName": name, "endpointGroups": list(groups)})
        return f"{T}:{name}"

    def build(self, key: str) -> dict[str, Any]:
        payload = build_payload(ObjectView(self.data), key)
        parse_app_profile(payload)  # what aci-gw accepts
        return payload


def links(payload: dict[str, Any], epg: str) -> set[tuple[str, str, str]]:
    found = next(e for e in payload["epgs"] if e["name"] == epg)
    return {
        (lk["link-kind"], lk["contract-kind"], lk["contract-name"] or lk["contract-dn"])
        for lk in found["contract-links"]
    }


def contracts(payload: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    return {c["name"]: c["filter-info"] for c in payload["contract-defs"]}


@pytest.fixture
def objs() -> Objects:
    o = Objects()
    o.network("net")
    return o


def test_epg_fields_and_gw_config(objs: Objects) -> None:
    objs.network("net2", subnet="20.1.1.10-20.1.1.100/24", gateway="20.1.1.254")
    objs.group("web")
    objs.group("db", network="net2")
    objs.put(
        "aciGw",
        "aciGw",
        {
            "name": "aciGw",
            "physicalDomain": "phys",
            "nodeBindings": "topology/pod-1/node-101",
            "pathBindings": "",
            "enforcePolicies": "yes",
            "includeCommonTenant": "no",
        },
    )
    payload = objs.build(objs.profile("web", "db"))
    assert payload["aci-gw-api-version"] == "v1.2"
    assert (payload["tenant"], payload["app-prof"]) == (T, "app")
    assert payload["epgs"] == [
        {"name": "web", "nw-name": "net", "gw-cidr": "10.1.1.1/24", "vlan-tag": "101", "contract-links": []},
        {"name": "db", "nw-name": "net2", "gw-cidr": "20.1.1.254/24", "vlan-tag": "102", "contract-links": []},
    ]
    assert payload["contract-defs"] == []
    assert payload["gw-config"]["physicalDomain"] == "phys"
    assert payload["gw-config"]["key"] == "aciGw"


def test_no_aci_gw_object_means_no_gw_config(objs: Objects) -> None:
    objs.group("web")
    assert "gw-config" not in objs.build(objs.profile("web"))


def test_network_without_gateway_is_l2_only() -> None:
    assert gw_cidr({"subnet": "10.0.0.0/16", "gateway": ""}) == ""
    assert gw_cidr({"subnet": "10.0.0.0/16", "gateway": "10.0.0.1"}) == "10.0.0.1/16"


def test_in_rule_from_epg_is_provided_by_owner_and_consumed_by_source(objs: Objects) -> None:
    objs.group("app")
    objs.group("db", policies=("dbPolicy",))
    objs.rule("dbPolicy", "1", fromEndpointGroup="app", protocol="tcp", port=6379)
    objs.rule("dbPolicy", "2", fromEndpointGroup="app", protocol="icmp")
    payload = objs.build(objs.profile("app", "db"))
    assert links(payload, "db") == {("PROVIDE", "INTERNAL", "dbPolicyFrmapp")}
    assert links(payload, "app") == {("CONSUME", "INTERNAL", "dbPolicyFrmapp")}
    assert contracts(payload) == {
        "dbPolicyFrmapp": [{"protocol": "tcp", "servport": "6379"}, {"protocol": "icmp", "servport": ""}]
    }


def test_out_rule_to_epg_is_consumed_by_owner_and_provided_by_target(objs: Objects) -> None:
    objs.group("web", policies=("webOut",))
    objs.group("db")
    objs.rule("webOut", "1", direction="out", toEndpointGroup="db", protocol="udp", port=53)
    payload = objs.build(objs.profile("web", "db"))
    assert links(payload, "web") == {("CONSUME", "INTERNAL", "webOutTodb")}
    assert links(payload, "db") == {("PROVIDE", "INTERNAL", "webOutTodb")}
    assert contracts(payload) == {"webOutTodb": [{"protocol": "udp", "servport": "53"}]}


def test_rule_without_groups_is_exposed(objs: Objects) -> None:
    objs.group("web", policies=("webPolicy",))
    objs.rule("webPolicy", "1", protocol="tcp", port=80)
    objs.rule("webPolicy", "2", protocol="tcp", port=443)
    payload = objs.build(objs.profile("web"))
    assert links(payload, "web") == {("PROVIDE", "INTERNAL", "webPolicyExpose")}
    assert contracts(payload)["webPolicyExpose"] == [
        {"protocol": "tcp", "servport": "80"},
        {"protocol": "tcp", "servport": "443"},
    ]


def test_deny_rules_are_ignored(objs: Objects) -> None:
    objs.group("app")
    objs.group("db", policies=("p",))
    objs.rule("p", "1", action="deny", fromEndpointGroup="app", protocol="tcp", port=22)
    payload = objs.build(objs.profile("app", "db"))
    assert payload["contract-defs"] == []
    assert links(payload, "db") == set()
    assert links(payload, "app") == set()


def test_source_outside_the_profile_gets_no_link(objs: Objects) -> None:
    objs.group("app")
    objs.group("db", policies=("p",))
    objs.rule("p", "1", fromEndpointGroup="app", protocol="tcp", port=5432)
    payload = objs.build(objs.profile("db"))
    assert [e["name"] for e in payload["epgs"]] == ["db"]
    assert links(payload, "db") == {("PROVIDE", "INTERNAL", "pFrmapp")}


def test_policy_shared_by_two_groups_defines_the_contract_once(objs: Objects) -> None:
    objs.group("client")
    objs.group("a", policies=("p",))
    objs.group("b", policies=("p",))
    objs.rule("p", "1", fromEndpointGroup="client", protocol="tcp", port=8000)
    payload = objs.build(objs.profile("client", "a", "b"))
    assert contracts(payload) == {"pFrmclient": [{"protocol": "tcp", "servport": "8000"}]}
    assert links(payload, "a") == links(payload, "b") == {("PROVIDE", "INTERNAL", "pFrmclient")}
    assert links(payload, "client") == {("CONSUME", "INTERNAL", "pFrmclient")}


def test_rules_of_other_policies_do_not_leak(objs: Objects) -> None:
    objs.group("app")
    objs.group("db", policies=("p",))
    objs.rule("p", "1", fromEndpointGroup="app", protocol="tcp", port=1)
    objs.rule("q", "1", fromEndpointGroup="app", protocol="tcp", port=2)
    assert list(contracts(objs.build(objs.profile("app", "db")))) == ["pFrmapp"]


def test_external_contract_groups_link_by_dn(objs: Objects) -> None:
    objs.put(
        "extContractsGroup",
        f"{T}:cons",
        {
            "tenantName": T,
            "contractsGroupName": "cons",
            "contractsType": "consumed",
            "contracts": ["uni/tn-common/brc-dns"],
        },
    )
    objs.put(
        "extContractsGroup",
        f"{T}:prov",
        {
            "tenantName": T,
            "contractsGroupName": "prov",
            "contractsType": "provided",
            "contracts": ["uni/tn-t1/brc-web"],
        },
    )
    objs.group("web", ext=("cons", "prov"))
    payload = objs.build(objs.profile("web"))
    web = next(e for e in payload["epgs"] if e["name"] == "web")
    assert web["contract-links"] == [
        {
            "link-kind": "CONSUME",
            "contract-kind": "EXTERNAL",
            "contract-name": "dns",
            "contract-dn": "uni/tn-common/brc-dns",
        },
        {
            "link-kind": "PROVIDE",
            "contract-kind": "EXTERNAL",
            "contract-name": "web",
            "contract-dn": "uni/tn-t1/brc-web",
        },
    ]


def test_missing_group_is_a_build_error(objs: Objects) -> None:
    with pytest.raises(BuildError, match="EndpointGroup t1:ghost not found"):
        objs.build(objs.profile("ghost"))


def test_hash_follows_content_only(objs: Objects) -> None:
    objs.group("app")
    objs.group("db", policies=("p",))
    key = objs.profile("app", "db")
    before = payload_hash(objs.build(key))
    assert payload_hash(objs.build(key)) == before
    objs.rule("p", "1", fromEndpointGroup="app", protocol="tcp", port=80)
    assert payload_hash(objs.build(key)) != before
