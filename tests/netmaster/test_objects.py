"""Contiv's object rules (reference contiv.md §1.3), each checked through HTTP: status and message."""

from __future__ import annotations

import pytest

from testbed.rest import Api, expect_error

# -- generic REST behaviour -----------------------------------------------------------------------


def test_default_tenant_exists_from_first_start(api: Api) -> None:
    assert api.ok(api.get("tenants", "default"))["tenantName"] == "default"


def test_routes_with_and_without_trailing_slash(api: Api) -> None:
    t = api.tenant()
    assert api.http.get(f"/api/v1/tenants/{t}").status_code == 200
    assert api.http.get(f"/api/v1/tenants/{t}/").status_code == 200
    assert any(x["key"] == t for x in api.ok(api.http.get("/api/v1/tenants")))


def test_list_carries_revision_header(api: Api) -> None:
    r = api.get("tenants")
    rev = int(r.headers["X-Revision"])
    api.tenant()
    assert int(api.get("tenants").headers["X-Revision"]) > rev


def test_put_equals_post(api: Api) -> None:
    r = api.http.put("/api/v1/tenants/viaput/", json={"tenantName": "viaput"})
    assert api.ok(r)["key"] == "viaput"


def test_missing_object_is_404_json(api: Api) -> None:
    expect_error(api.get("networks", "default:nope"), 404, "network default:nope not found")
    expect_error(api.delete("policys", "default:nope"), 404, "not found")
    expect_error(api.http.get("/api/v1/inspect/tenants/nope/"), 404, "tenant nope not found")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "invalid JSON"),
        (b"", "request body is empty"),
        (b"[1,2]", "must be a JSON object"),
        (b'{"tenantName": 5}', "tenantName must be a string"),
        (b'{"tenantName": "x", "bogus": 1}', "unknown field(s): bogus"),
        (b"[" * 100000 + b"]" * 100000, "invalid JSON"),
    ],
)
def test_malformed_bodies_are_400(api: Api, body: bytes, fragment: str) -> None:
    r = api.http.post("/api/v1/tenants/x/", content=body, headers={"content-type": "application/json"})
    expect_error(r, 400, fragment)


def test_huge_body_is_413(api: Api) -> None:
    r = api.http.post("/api/v1/tenants/x/", content=b'{"tenantName": "' + b"a" * (2 << 20) + b'"}')
    expect_error(r, 413, "larger than")


def test_key_must_match_fields(api: Api) -> None:
    expect_error(api.post("tenants", "a", tenantName="b"), 400, "Invalid Key")
    expect_error(
        api.post("networks", "default:n1", tenantName="default", networkName="n2", encap="vlan", subnet="10.9.9.0/24"),
        400,
        "Invalid Key",
    )


def test_key_fields_default_from_url(api: Api) -> None:
    assert api.ok(api.post("tenants", "fromurl"))["tenantName"] == "fromurl"


# -- tenant ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tenant|invalid", "-tenant", "#", "@", "!", "~", "*", "a_b", "tenant-"])
def test_tenant_name_format(api: Api, name: str) -> None:
    expect_error(api.post("tenants", name, tenantName=name), 400, "tenantName string invalid format")


def test_tenant_name_with_colon_is_invalid(api: Api) -> None:
    expect_error(api.post("tenants", "tenant:invalid", tenantName="tenant:invalid"), 400, "tenantName string invalid")
    expect_error(api.post("tenants", "tenant:invalid"), 400, "Invalid Key")


def test_tenant_name_length(api: Api) -> None:
    name = "a" * 65
    expect_error(api.post("tenants", name, tenantName=name), 400, "tenantName string too long")
    assert api.ok(api.post("tenants", "b" * 64))["tenantName"] == "b" * 64


def test_tenant_update_refused_unless_unchanged(api: Api) -> None:
    t = api.tenant()
    assert api.post("tenants", t, tenantName=t).status_code == 200
    expect_error(
        api.post("tenants", t, tenantName=t, defaultNetwork="x"), 409, "Cant change tenant parameters after its created"
    )


def test_tenant_delete_refused_in_contiv_order(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "g1")
    api.ok(api.post("policys", f"{t}:p", tenantName=t, policyName="p"))
    api.ok(api.post("appProfiles", f"{t}:app", tenantName=t, appProfileName="app", endpointGroups=["g1"]))
    expect_error(api.delete("tenants", t), 409, f"cannot delete {t} has 1 app profiles")
    api.ok(api.delete("appProfiles", f"{t}:app"))
    expect_error(api.delete("tenants", t), 409, f"cannot delete {t} has 1 endpoint groups")
    api.ok(api.delete("endpointGroups", f"{t}:g1"))
    expect_error(api.delete("tenants", t), 409, f"cannot delete {t} has 1 policies")
    api.ok(api.delete("policys", f"{t}:p"))
    expect_error(api.delete("tenants", t), 409, f"cannot delete {t} has 1 networks")
    api.ok(api.delete("networks", f"{t}:net"))
    assert api.ok(api.delete("tenants", t)) == t
    expect_error(api.get("tenants", t), 404, "not found")


def test_tenant_inspect_counts(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "g")
    assert api.ok(api.endpoint(f"{t}-ep", t, "net", groupName="g"))
    oper = api.inspect("tenants", t)["Oper"]
    assert (oper["totalNetworks"], oper["totalEPGs"], oper["totalEndpoints"]) == (1, 1, 1)
    assert [n["key"] for n in oper["networks"]] == [f"{t}:net"]
    assert oper["networks"][0]["numEndpoints"] == 1
    assert oper["endpoints"][0]["endpointGroupKey"] == f"g:{t}"


# -- network --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "fragment"),
    [
        ({"subnet": "10.1.1.0"}, 400, "subnet string invalid format"),
        ({"subnet": "10.1.1.0/33"}, 400, "subnet string invalid format"),
        ({"subnet": "300.1.1.0/24"}, 400, "subnet string invalid format"),
        ({"subnet": "10.0.0.0/4"}, 400, "subnet length 4 not supported"),
        ({"subnet": "10.1.1.0/24", "gateway": "10.1.2.1"}, 400, "gateway 10.1.2.1 is not a host address"),
        ({"subnet": "10.1.1.0/24", "gateway": "10.1.1.255"}, 400, "is not a host address"),
        ({"subnet": "10.1.1.0/24", "encap": "gre"}, 400, "encap string invalid format"),
        ({"subnet": "10.1.1.0/24", "encap": ""}, 400, "encap is required"),
        ({"subnet": "10.1.1.0/24", "pktTag": 16777217}, 400, "pktTag Value Out of bound"),
        ({"subnet": "10.1.1.0/24", "pktTag": -1}, 400, "pktTag Value Out of bound"),
        ({"subnet": "10.1.1.0/24", "nwType": "bogus"}, 400, "nwType string invalid format"),
        ({"subnet": "10.1.1.50-10.1.1.10/24"}, 400, "invalid subnet range"),
    ],
)
def test_network_validation(api: Api, fields: dict, status: int, fragment: str) -> None:
    t = api.tenant()
    body = {"tenantName": t, "networkName": "n", "encap": "vlan", **fields}
    expect_error(api.post("networks", f"{t}:n", body), status, fragment)
    expect_error(api.get("networks", f"{t}:n"), 404, "not found")


def test_network_needs_tenant(api: Api) -> None:
    expect_error(api.post("networks", "ghost:n", encap="vlan", subnet="10.1.1.0/24"), 404, "Tenant ghost not found")


def test_network_overlap_same_tenant_only(api: Api) -> None:
    t1, t2 = api.tenant(), api.tenant()
    api.network(t1, "a", "20.1.1.0/24")
    expect_error(api.post("networks", f"{t1}:b", encap="vlan", subnet="20.1.1.128/25"), 409, "overlaps with network a")
    api.network(t2, "a", "20.1.1.0/24")  # other tenant: fine


def test_network_range_subnets_coexist(api: Api) -> None:
    t = api.tenant()
    api.network(t, "a", "20.1.1.10-20.1.1.45/24")
    api.network(t, "b", "20.1.1.46-20.1.1.100/24")
    expect_error(api.post("networks", f"{t}:c", encap="vlan", subnet="20.1.1.100-20.1.1.120/24"), 409, "overlaps")
    ep = api.ok(api.endpoint(f"{t}-r1", t, "b"))
    assert ep["ipAddress"] == "20.1.1.46"


def test_network_name_clash_with_group(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net")
    api.group(t, "net", "web")
    expect_error(api.post("networks", f"{t}:web", encap="vlan", subnet="10.7.7.0/24"), 409, "clashes")
    expect_error(api.post("endpointGroups", f"{t}:net", networkName="net"), 409, "clashes")


def test_network_immutable(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    same = {"tenantName": t, "networkName": "net", "encap": "vxlan", "subnet": "10.1.1.0/24"}
    api.ok(api.post("networks", f"{t}:net", same))
    expect_error(
        api.post("networks", f"{t}:net", {**same, "gateway": "10.1.1.1"}),
        409,
        "Cant change network parameters after its created",
    )


def test_network_delete_refused_with_groups_and_endpoints(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "g")
    expect_error(api.delete("networks", f"{t}:net"), 409, "has endpoint groups")
    api.ok(api.delete("endpointGroups", f"{t}:g"))
    api.ok(api.endpoint(f"{t}-e", t, "net"))
    expect_error(api.delete("networks", f"{t}:net"), 409, "Network has active endpoints")
    api.ok(api.http.delete(f"/api/v1/endpoints/{t}-e/"))
    api.ok(api.delete("networks", f"{t}:net"))


def test_vlan_allocation_requested_and_released(api: Api) -> None:
    t = api.tenant()
    api.network(t, "v1", "10.50.1.0/24", encap="vlan", pktTag=3001)
    expect_error(
        api.post("networks", f"{t}:v2", encap="vlan", subnet="10.50.2.0/24", pktTag=3001),
        409,
        "requested vlan not available - vlan:3001",
    )
    api.ok(api.delete("networks", f"{t}:v1"))
    api.network(t, "v2", "10.50.2.0/24", encap="vlan", pktTag=3001)
    assert api.inspect("networks", f"{t}:v2")["Oper"]["pktTag"] == 3001


def test_vxlan_out_of_range(api: Api) -> None:
    t = api.tenant()
    expect_error(
        api.post("networks", f"{t}:x", encap="vxlan", subnet="10.60.0.0/24", pktTag=20000),
        409,
        "requested vxlan is out of range",
    )


def test_network_inspect_addresses_like_contiv(api: Api) -> None:
    t = api.tenant()
    api.network(t, "n", "60.1.1.0/24", gateway="60.1.1.254")
    for i in range(3):
        api.ok(api.endpoint(f"{t}-ep{i}", t, "n"))
    oper = api.inspect("networks", f"{t}:n")["Oper"]
    assert oper["allocatedIPAddresses"] == "60.1.1.1-60.1.1.3, 60.1.1.254"
    assert oper["availableIPAddresses"] == "60.1.1.4-60.1.1.253"
    assert oper["numEndpoints"] == 3
    # Contiv's count leaves out the gateway (its objapi test expects 0 for a network with only one)
    assert oper["allocatedAddressesCount"] == 3
    assert sorted(e["endpointID"] for e in oper["endpoints"]) == [f"{t}-ep{i}" for i in range(3)]
    assert oper["endpoints"][0]["macAddress"].startswith("02:02:")


def test_network_links(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "g")
    net = api.ok(api.get("networks", f"{t}:net"))
    assert net["links"]["Tenant"] == {"type": "tenant", "key": t}
    assert net["link-sets"]["EndpointGroups"] == {f"{t}:g": {"type": "endpointGroup", "key": f"{t}:g"}}
    tenant = api.ok(api.get("tenants", t))
    assert set(tenant["link-sets"]) == {"Networks", "EndpointGroups"}


# -- endpoint groups ------------------------------------------------------------------------------


def test_group_references_must_exist(api: Api) -> None:
    t = api.tenant()
    expect_error(api.post("endpointGroups", f"{t}:g", networkName="nope"), 404, f"Network {t}:nope not found")
    api.network(t)
    expect_error(
        api.post("endpointGroups", f"{t}:g", networkName="net", policies=["p"]), 404, f"Policy {t}:p not found"
    )
    expect_error(api.post("endpointGroups", f"{t}:g", networkName="net", netProfile="np"), 404, "Netprofile")
    expect_error(
        api.post("endpointGroups", f"{t}:g", networkName="net", extContractsGrps=["x"]), 404, "External contracts group"
    )
    expect_error(api.get("endpointGroups", f"{t}:g"), 404, "not found")


def test_group_network_and_pool_immutable(api: Api) -> None:
    t = api.tenant()
    api.network(t, "a", "10.1.1.0/24")
    api.network(t, "b", "10.1.2.0/24")
    api.group(t, "a", "g", ipPool="10.1.1.10-10.1.1.20")
    expect_error(
        api.post("endpointGroups", f"{t}:g", networkName="b", ipPool="10.1.1.10-10.1.1.20"),
        409,
        "Cannot change network association",
    )
    expect_error(
        api.post("endpointGroups", f"{t}:g", networkName="a", ipPool="10.1.1.10-10.1.1.30"),
        409,
        "Cannot change IP pool",
    )


def test_group_policy_attach_detach(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.ok(api.post("policys", f"{t}:p", tenantName=t, policyName="p"))
    api.group(t, "net", "g", policies=["p"])
    expect_error(api.delete("policys", f"{t}:p"), 409, "Policy is being used")
    api.group(t, "net", "g", policies=[])
    api.ok(api.delete("policys", f"{t}:p"))


def test_group_ids_are_distinct_and_reused_lowest_first(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    ids = {}
    for g in ("a", "b", "c"):
        api.group(t, "net", g)
        ids[g] = api.inspect("endpointGroups", f"{t}:{g}")["Oper"]["endpointGroupId"]
    assert len(set(ids.values())) == 3
    api.ok(api.delete("endpointGroups", f"{t}:b"))
    api.group(t, "net", "d")
    assert api.inspect("endpointGroups", f"{t}:d")["Oper"]["endpointGroupId"] == ids["b"]


def test_group_delete_refused_in_app_profile_or_with_endpoints(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "g")
    api.ok(api.post("appProfiles", f"{t}:app", endpointGroups=["g"]))
    expect_error(api.delete("endpointGroups", f"{t}:g"), 409, "used by app profile")
    api.ok(api.delete("appProfiles", f"{t}:app"))
    api.ok(api.endpoint(f"{t}-e", t, "net", groupName="g"))
    expect_error(api.delete("endpointGroups", f"{t}:g"), 409, "EPG g has active endpoints")


@pytest.mark.parametrize(
    ("pool", "fragment"),
    [
        ("10.3.1.0-10.3.1.10", "not a host address"),
        ("10.3.1.250-10.3.1.255", "not a host address"),
        ("10.3.1.250-10.3.1.320", "ipPool string invalid format"),
        ("10.3.2.1-10.3.2.10", "not a host address"),
        ("10.3.1.0/24", "ipPool string invalid format"),
        ("10.3.1.20-10.3.1.10", "end before start"),
    ],
)
def test_group_ip_pool_validation(api: Api, pool: str, fragment: str) -> None:
    t = api.tenant()
    api.network(t, "net", "10.3.1.0/24")
    r = api.post("endpointGroups", f"{t}:g", networkName="net", ipPool=pool)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


def test_group_ip_pool_allocation_and_conflicts(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.3.1.0/24")
    api.ok(api.endpoint(f"{t}-plain", t, "net"))  # takes 10.3.1.1
    expect_error(
        api.post("endpointGroups", f"{t}:g", networkName="net", ipPool="10.3.1.1-10.3.1.5"),
        409,
        "ip address 10.3.1.1 is not available",
    )
    api.group(t, "net", "g", ipPool="10.3.1.10-10.3.1.11")
    assert api.ok(api.endpoint(f"{t}-p1", t, "net", groupName="g"))["ipAddress"] == "10.3.1.10"
    assert api.ok(api.endpoint(f"{t}-p2", t, "net", groupName="g"))["ipAddress"] == "10.3.1.11"
    expect_error(
        api.endpoint(f"{t}-p3", t, "net", groupName="g"), 409, "address exhaustion in pool 10.3.1.10-10.3.1.11"
    )
    # Network allocations skip the pool.
    assert api.ok(api.endpoint(f"{t}-plain2", t, "net"))["ipAddress"] == "10.3.1.2"
    oper = api.inspect("endpointGroups", f"{t}:g")["Oper"]
    assert oper["allocatedIPAddresses"] == "10.3.1.10-10.3.1.11"
    assert oper["availableIPAddresses"] == ""
    assert (
        api.inspect("networks", f"{t}:net")["Oper"]["allocatedIPAddresses"] == "10.3.1.1-10.3.1.2, 10.3.1.10-10.3.1.11"
    )


# -- policies and rules ---------------------------------------------------------------------------


def _rule(api: Api, t: str, rule_id: str, **fields: object):
    body = {"tenantName": t, "policyName": "p", "ruleId": rule_id, "direction": "in", "action": "allow", **fields}
    return api.post("rules", f"{t}:p:{rule_id}", body)


@pytest.fixture
def policy_tenant(api: Api) -> str:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "web")
    api.group(t, "net", "db")
    api.ok(api.post("policys", f"{t}:p", tenantName=t, policyName="p"))
    return t


@pytest.mark.parametrize(
    ("fields", "status", "fragment"),
    [
        ({"direction": "both"}, 400, "direction string invalid format"),
        ({"direction": "in", "toEndpointGroup": "db"}, 400, "can not specify 'to'"),
        ({"direction": "in", "fromNetwork": "net", "fromEndpointGroup": "web"}, 400, "'from' network together"),
        ({"direction": "in", "fromNetwork": "net", "fromIpAddress": "10.1.1.5"}, 400, "'from' network together"),
        ({"direction": "out", "fromEndpointGroup": "web"}, 400, "'from' parameters in an outgoing rule"),
        ({"direction": "out", "toNetwork": "net", "toEndpointGroup": "db"}, 400, "'to' network together"),
        ({"action": "permit"}, 400, "action string invalid format"),
        ({"action": ""}, 400, "action is required"),
        ({"priority": 101}, 400, "priority Value Out of bound"),
        ({"protocol": "sctp"}, 400, "protocol string invalid format"),
        ({"port": 70000, "protocol": "tcp"}, 400, "port Value Out of bound"),
        ({"port": 80, "protocol": "icmp"}, 400, "a port requires protocol tcp or udp"),
        ({"fromIpAddress": "10.1.1.999"}, 400, "fromIpAddress string invalid format"),
        ({"fromEndpointGroup": "ghost"}, 404, "endpointGroup"),
        ({"direction": "out", "toNetwork": "ghost"}, 404, "network"),
    ],
)
def test_rule_validation(api: Api, policy_tenant: str, fields: dict, status: int, fragment: str) -> None:
    expect_error(_rule(api, policy_tenant, "r1", **fields), status, fragment)


def test_rule_needs_policy(api: Api) -> None:
    t = api.tenant()
    expect_error(api.post("rules", f"{t}:nope:1", direction="in", action="allow"), 404, f"Policy {t}:nope not found")


def test_rule_valid_forms_and_priority_default(api: Api, policy_tenant: str) -> None:
    t = policy_tenant
    assert api.ok(_rule(api, t, "1", fromEndpointGroup="web", protocol="tcp", port=8000, priority=0))["priority"] == 1
    api.ok(_rule(api, t, "2", fromIpAddress="10.1.1.0/24", protocol="icmp", action="deny"))
    api.ok(_rule(api, t, "3", fromIpAddress="10.1.1.1-5"))
    api.ok(_rule(api, t, "4", direction="out", toNetwork="net", protocol="udp", port=53, priority=100))
    api.ok(_rule(api, t, "5", protocol="17"))
    rules = [r["ruleId"] for r in api.ok(api.get("rules")) if r["tenantName"] == t]
    assert rules == ["1", "2", "3", "4", "5"]


def test_rule_immutable(api: Api, policy_tenant: str) -> None:
    api.ok(_rule(api, policy_tenant, "1", protocol="tcp", port=80))
    api.ok(_rule(api, policy_tenant, "1", protocol="tcp", port=80))
    expect_error(
        _rule(api, policy_tenant, "1", protocol="tcp", port=81), 409, "can not update a rule after its created"
    )


def test_in_rule_with_to_ip_needs_single_group_member(api: Api, policy_tenant: str) -> None:
    t = policy_tenant
    expect_error(_rule(api, t, "k", toIpAddress="10.1.1.1"), 400, "attached to exactly one group")
    api.group(t, "net", "web", policies=["p"])
    expect_error(_rule(api, t, "k", toIpAddress="10.1.1.1"), 400, "is not an endpoint of group web")
    ip = api.ok(api.endpoint(f"{t}-k8s", t, "net", groupName="web"))["ipAddress"]
    api.ok(_rule(api, t, "k", toIpAddress=ip))


def test_policy_delete_removes_rules(api: Api, policy_tenant: str) -> None:
    t = policy_tenant
    api.ok(_rule(api, t, "1"))
    api.ok(api.delete("policys", f"{t}:p"))
    expect_error(api.get("rules", f"{t}:p:1"), 404, "not found")


def test_policy_links_and_inspect(api: Api, policy_tenant: str) -> None:
    t = policy_tenant
    api.ok(_rule(api, t, "1"))
    api.group(t, "net", "web", policies=["p"])
    api.ok(api.endpoint(f"{t}-w1", t, "net", groupName="web"))
    policy = api.ok(api.get("policys", f"{t}:p"))
    assert set(policy["link-sets"]["Rules"]) == {f"{t}:p:1"}
    assert set(policy["link-sets"]["EndpointGroups"]) == {f"{t}:web"}
    assert api.inspect("policys", f"{t}:p")["Oper"]["numEndpoints"] == 1


# -- app profiles, netprofiles, external contracts, services, bgp, aciGw --------------------------


def test_app_profile(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "a")
    expect_error(api.post("appProfiles", f"{t}:app", endpointGroups=["a", "b"]), 404, f"EndpointGroup {t}:b not found")
    api.group(t, "net", "b")
    prof = api.ok(api.post("appProfiles", f"{t}:app", endpointGroups=["a", "b"]))
    assert prof["endpointGroups"] == ["a", "b"]
    api.ok(api.post("appProfiles", f"{t}:app", endpointGroups=["a"]))
    assert api.ok(api.get("endpointGroups", f"{t}:a"))["links"]["AppProfile"]["key"] == f"{t}:app"
    assert "AppProfile" not in api.ok(api.get("endpointGroups", f"{t}:b")).get("links", {})
    api.ok(api.post("appProfiles", f"{t}:empty", endpointGroups=[]))


@pytest.mark.parametrize("bandwidth", ["10 kbps", "100mbps", "1gbps", "5Mb", "6Mbps", ""])
def test_netprofile_bandwidth_forms(api: Api, bandwidth: str) -> None:
    t = api.tenant()
    api.ok(api.post("netprofiles", f"{t}:np", bandwidth=bandwidth, DSCP=10, burst=100))


def test_netprofile_rules(api: Api) -> None:
    t = api.tenant()
    expect_error(api.post("netprofiles", f"{t}:np", bandwidth="fast"), 400, "bandwidth string invalid format")
    expect_error(api.post("netprofiles", f"{t}:np", DSCP=64), 400, "DSCP Value Out of bound")
    expect_error(api.post("netprofiles", f"{t}:np", burst=1), 400, "burst size must be > 1500 bytes")
    api.ok(api.post("netprofiles", f"{t}:np", bandwidth="10mbps"))
    api.network(t)
    api.group(t, "net", "g", netProfile="np")
    expect_error(api.delete("netprofiles", f"{t}:np"), 409, "NetProfile is being used")
    api.ok(api.post("netprofiles", f"{t}:np", bandwidth="20mbps"))  # update is allowed


def test_netprofile_and_group_inspect_show_what_is_in_force(api: Api) -> None:
    t = api.tenant()
    api.ok(api.post("netprofiles", f"{t}:gold", bandwidth="10 mbps", DSCP=46, burst=500))
    api.ok(api.post("netprofiles", f"{t}:mark", DSCP=0))
    api.network(t)
    api.group(t, "net", "g", netProfile="gold")
    expected = {"rateKbps": 10_000, "burstKbits": 4000, "rateLimit": "OpenFlow meter per endpoint port (drop band)",
                "dscpMarking": 46}
    assert api.inspect("netprofiles", f"{t}:gold")["Oper"] == {**expected, "endpointGroups": [f"{t}:g"]}
    assert api.inspect("endpointGroups", f"{t}:g")["Oper"]["netProfile"] == {"profileName": "gold", **expected}
    api.ok(api.post("netprofiles", f"{t}:gold", bandwidth="1g"))  # edited live: inspect follows
    assert api.inspect("endpointGroups", f"{t}:g")["Oper"]["netProfile"] == {
        "profileName": "gold", "rateKbps": 1_000_000, "burstKbits": 200_000,
        "rateLimit": "OpenFlow meter per endpoint port (drop band)", "dscpMarking": "none (the sender's value)"}
    assert api.inspect("netprofiles", f"{t}:mark")["Oper"] == {
        "rateKbps": 0, "burstKbits": 0, "rateLimit": "none", "dscpMarking": "none (the sender's value)",
        "endpointGroups": []}
    api.group(t, "net", "plain")
    assert "netProfile" not in api.inspect("endpointGroups", f"{t}:plain")["Oper"]


def test_external_contracts_group(api: Api) -> None:
    t = api.tenant()
    expect_error(
        api.post("extContractsGroups", f"{t}:ec", contractsType="both", contracts=[]),
        400,
        "contractsType must be provided or consumed",
    )
    body = {"contractsType": "consumed", "contracts": ["uni/tn-common/brc-default"]}
    api.ok(api.post("extContractsGroups", f"{t}:ec", body))
    expect_error(
        api.post("extContractsGroups", f"{t}:ec", {**body, "contractsType": "provided"}), 409, "can not be updated"
    )
    api.network(t)
    api.group(t, "net", "g", extContractsGrps=["ec"])
    expect_error(api.delete("extContractsGroups", f"{t}:ec"), 409, "External contracts group is in-use")


def test_service_lb(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.8.8.0/24")
    base = {"networkName": "net", "selectors": ["app=web"], "ports": ["80:8080:TCP"]}
    expect_error(api.post("serviceLBs", f"{t}:s", {**base, "selectors": []}), 400, "at least one selector")
    expect_error(api.post("serviceLBs", f"{t}:s", {**base, "selectors": ["a=b=c"]}), 400, "invalid selector")
    expect_error(api.post("serviceLBs", f"{t}:s", {**base, "ports": ["80:8080"]}), 400, "invalid port")
    svc = api.ok(api.post("serviceLBs", f"{t}:s", base))
    assert svc["serviceName"] == "s"
    assert api.inspect("serviceLBs", f"{t}:s")["Oper"]["serviceVip"] == "10.8.8.1"
    api.ok(api.post("serviceLBs", f"{t}:s2", {**base, "ipAddress": "10.8.8.100"}))
    expect_error(api.endpoint(f"{t}-x", t, "net", ipAddress="10.8.8.100"), 409, "already in use")
    expect_error(api.post("serviceLBs", f"{t}:s3", {**base, "ports": ["80:8080:TCP", "80:9090:tcp"]}), 400,
                 "given twice")
    expect_error(api.post("serviceLBs", f"{t}:s3", {**base, "affinityTimeout": 70000}), 400, "Out of bound")
    api.ok(api.endpoint(f"{t}-w", t, "net", labels={"app": "web"}))
    api.ok(api.endpoint(f"{t}-v", t, "net", labels={"app": "web", "tier": "1"}))
    api.ok(api.endpoint(f"{t}-n", t, "net", labels={"app": "db"}))
    oper = api.inspect("serviceLBs", f"{t}:s")["Oper"]
    assert oper["numProviders"] == 2
    assert [p["endpointID"] for p in oper["providers"]] == [f"{t}-v", f"{t}-w"]
    assert oper["ports"] == ["80:8080:TCP"]
    expect_error(api.delete("networks", f"{t}:net"), 409, "has services")


def test_bgp(api: Api) -> None:
    expect_error(api.post("Bgps", "host1", routerip="10.1.1.1"), 400, "routerip string invalid format")
    bgp = api.ok(
        api.post(
            "Bgps",
            "host1",
            {"routerip": "10.1.1.1/24", "as": "65001", "neighbor-as": "65000", "neighbor": "10.1.1.254"},
        )
    )
    assert bgp["hostname"] == "host1"
    assert api.ok(api.get("Bgps", "host1"))["as"] == "65001"
    # the state lives on the host: without an agent the inspect says why and still shows the object
    inspected = api.inspect("Bgps", "host1")
    assert inspected["Config"]["routerip"] == "10.1.1.1/24"
    assert inspected["Oper"]["numRoutes"] == 0
    assert "agent host1 not found" in inspected["Oper"]["error"]
    # several neighbours (two ToRs), comma-separated; anything else in the list is refused
    api.ok(api.post("Bgps", "host1", {"routerip": "10.1.1.1/24", "neighbor": "10.1.1.254,10.1.1.253"}))
    expect_error(api.post("Bgps", "host1", routerip="10.1.1.1/24", neighbor="10.1.1.254,x"), 400,
                 "neighbor string invalid format")
    api.ok(api.delete("Bgps", "host1"))


def test_aci_gw_object(fresh_api: Api) -> None:
    api = fresh_api
    expect_error(
        api.post("aciGws", "other", physicalDomain="d", enforcePolicies="yes", includeCommonTenant="no"),
        400,
        "aciGw key must be 'aciGw'",
    )
    expect_error(
        api.post("aciGws", "aciGw", enforcePolicies="yes", includeCommonTenant="no"), 400, "physicalDomain is required"
    )
    body = {
        "physicalDomain": "phys",
        "enforcePolicies": "yes",
        "includeCommonTenant": "no",
        "nodeBindings": "topology/pod-1/node-101,topology/pod-1/node-102",
        "pathBindings": "topology/pod-1/paths-101/pathep-[eth1/14]",
    }
    api.ok(api.post("aciGws", "aciGw", body))
    expect_error(
        api.post("aciGws", "aciGw", {**body, "nodeBindings": "node-101"}), 400, "nodeBindings string invalid format"
    )
    t = api.tenant()
    api.ok(api.post("appProfiles", f"{t}:app", endpointGroups=[]))
    expect_error(api.delete("aciGws", "aciGw"), 409, "app profiles exist")
    api.ok(api.delete("appProfiles", f"{t}:app"))
    api.ok(api.delete("aciGws", "aciGw"))
