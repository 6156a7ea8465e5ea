"""The behavioural expectations of Contiv's own REST tests (netmaster/objApi/objapi_test.go), through HTTP.

Each test names the Contiv test it ports. Where this project deliberately differs, the test says so:
refusals are 4xx with a JSON body (Contiv answered 500 with text; see ``--compat-errors``), an
identical re-POST is accepted and a changed one refused where Contiv silently ignored it.
"""

from __future__ import annotations

import pytest

from testbed.rest import Api, expect_error


def _net(api: Api, tenant: str, name: str, subnet: str, *, ok: bool = True, **kw: object) -> None:
    body = {"tenantName": tenant, "networkName": name, "encap": kw.pop("encap", "vlan"), "subnet": subnet, **kw}
    response = api.post("networks", f"{tenant}:{name}", body)
    if ok:
        api.ok(response)
    else:
        assert 400 <= response.status_code < 500, response.text
        assert api.get("networks", f"{tenant}:{name}").status_code == 404, "a refused network was stored"


def test_overlapping_subnets_ipv4(api: Api) -> None:
    """TestOverlappingSubnets, IPv4 part: same tenant refused whatever the encaps and gateway; ranges
    that do not overlap coexist; another tenant may reuse the subnet."""
    t, other = api.tenant(), api.tenant()
    _net(api, t, "contiv", "10.1.1.0/24")
    _net(api, t, "contiv1", "10.1.1.0/24", ok=False, encap="vxlan")
    _net(api, t, "contiv2", "10.1.1.0/24", ok=False, gateway="10.1.1.233")
    _net(api, t, "wide", "10.1.0.0/16", ok=False)
    _net(api, other, "contiv1", "10.1.0.0/16")
    _net(api, t, "r1", "20.1.1.10-20.1.1.45/24")
    _net(api, t, "r2", "20.1.1.46-20.1.1.100/24")
    _net(api, t, "r3", "20.1.1.0-20.1.1.9/24")
    _net(api, t, "r4", "20.1.1.45-20.1.1.100/24", ok=False)
    _net(api, t, "r5", "20.1.1.0-20.1.1.10/24", ok=False)


def test_overlapping_subnets_ipv6(api: Api) -> None:
    """TestOverlappingSubnets, IPv6 part: an IPv6 subnet overlapping another network's in the same
    tenant is refused like an IPv4 overlap; other tenants and disjoint subnets are fine."""
    t, other = api.tenant(), api.tenant()
    _net(api, t, "a", "30.1.1.0/24", ipv6Subnet="::/64")
    _net(api, t, "b", "30.1.2.0/24", ipv6Subnet="1::/64")
    _net(api, t, "c", "30.1.3.0/24", ipv6Subnet="2001:3332:3244:2422::/64")
    response = api.post("networks", f"{t}:d", encap="vlan", subnet="30.1.4.0/24", ipv6Subnet="2001:3332:3244:2422::/64")
    expect_error(response, 409, "ipv6 subnet 2001:3332:3244:2422::/64 overlaps with network c")
    _net(api, t, "e", "30.2.0.0/16", encap="vxlan", ipv6Subnet="2001:2000::/32")
    _net(api, t, "f", "30.3.0.0/16", ok=False, encap="vxlan", ipv6Subnet="2001:2000:1234:4422::/64")
    _net(api, other, "c", "30.1.3.0/24", ipv6Subnet="2001:3332:3244:2422::/64")


def test_ipv6_subnet_of_128_is_refused(api: Api) -> None:
    """TestNetworkAddDelete: ``2016:0617::/128`` leaves no address, so the network is refused."""
    t = api.tenant()
    response = api.post("networks", f"{t}:n", encap="vxlan", subnet="10.1.1.1/24", ipv6Subnet="2016:0617::/128")
    expect_error(response, 400, "a /128 subnet has no addresses")
    _net(api, t, "n", "10.1.1.1/16", encap="vxlan", ipv6Subnet="2016:0617::/120")


@pytest.mark.parametrize(
    "subnet",
    ["10.1.1.10-20/24", "10.1.1.10-10.1.20/24", "10.1.1.10-10.1.1.1/24", "10.1.1.10-10.1.2.30/24",
     "10.1.1.10-10.2.1.30/16", "10.1.1.10-10.1.1.1.30/24", "10.1.1/24", "10.1.1.256/24"],
)  # fmt: skip
def test_invalid_subnet_forms(api: Api, subnet: str) -> None:
    """TestNetworkAddDelete: every malformed subnet or range is refused (400), nothing stored."""
    t = api.tenant()
    _net(api, t, "contiv", subnet, ok=False, encap="vxlan", gateway="10.1.1.254")


def test_inspect_network_gateway_is_listed_not_counted(api: Api) -> None:
    """checkInspectNetwork(..., "10.1.1.220", pktTag, 0): a network with only a gateway shows the
    gateway in allocatedIPAddresses and counts 0 allocated addresses."""
    t = api.tenant()
    _net(api, t, "contiv1", "10.1.1.0/24", gateway="10.1.1.220")
    _net(api, t, "plain", "10.1.2.0/24")
    oper = api.inspect("networks", f"{t}:contiv1")["Oper"]
    assert oper["allocatedIPAddresses"] == "10.1.1.220"
    assert oper["allocatedAddressesCount"] == 0
    oper = api.inspect("networks", f"{t}:plain")["Oper"]
    assert oper["allocatedIPAddresses"] == ""
    assert oper["allocatedAddressesCount"] == 0


def test_network_and_group_tags_as_contiv_derives_them(api: Api) -> None:
    """TestTenantDelete's objects: ``Oper.networkTag``/``Oper.groupTag`` are the configured tag, or
    ``<name>.<tenant>`` when none was given (Contiv's master/network.go and endpointGroup.go)."""
    t = api.tenant()
    _net(api, t, "net1", "10.1.0.0/16", gateway="10.1.1.254")
    _net(api, t, "net2", "20.1.0.0/16", gateway="20.1.1.254", cfgdTag="test-tag")
    api.group(t, "net1", "group1")
    api.group(t, "net2", "group3", cfgdTag="epg-tag")
    assert api.inspect("networks", f"{t}:net1")["Oper"]["networkTag"] == f"net1.{t}"
    assert api.inspect("networks", f"{t}:net2")["Oper"]["networkTag"] == "test-tag"
    assert api.inspect("endpointGroups", f"{t}:group1")["Oper"]["groupTag"] == f"group1.{t}"
    assert api.inspect("endpointGroups", f"{t}:group3")["Oper"]["groupTag"] == "epg-tag"


def test_tenant_delete_refused_while_in_use(api: Api) -> None:
    """TestTenantDelete: refused while app profiles, then groups, then networks exist; then deleted.
    Difference: 409 with the reason instead of Contiv's 500."""
    t = api.tenant()
    _net(api, t, "net1", "10.1.0.0/16")
    api.group(t, "net1", "group1")
    api.ok(api.post("appProfiles", f"{t}:profile1", endpointGroups=["group1"]))
    expect_error(api.delete("tenants", t), 409, "app profiles")
    api.ok(api.delete("appProfiles", f"{t}:profile1"))
    expect_error(api.delete("tenants", t), 409, "")
    api.ok(api.delete("endpointGroups", f"{t}:group1"))
    expect_error(api.delete("tenants", t), 409, "")
    api.ok(api.delete("networks", f"{t}:net1"))
    api.ok(api.delete("tenants", t))
    expect_error(api.get("tenants", t), 404, "not found")


@pytest.mark.parametrize("name", ["tenant:invalid", "tenant|invalid", "tenant#invalid", "-tenant", "tenant@invalid",
                                  "tenant!invalid", "tenant~invalid", "tenant*invalid", "tenant^invalid"])  # fmt: skip
def test_tenant_invalid_names(api: Api, name: str) -> None:
    """TestTenantAddDelete: these names are refused (400: Contiv's message, 4xx status)."""
    response = api.http.post("/api/v1/tenants/x/", json={"tenantName": name})
    assert response.status_code == 400, response.text


def test_aci_mode_accepts_vxlan_networks(fresh_api: Api) -> None:
    """TestNetworkAddDeleteACIMode: in ACI mode a VXLAN network (with or without IPv6) is created and
    deleted; an EPG on it gets its own VLAN toward the leaf, as on a VLAN network."""
    api = fresh_api
    api.ok(api.post("globals", "global", networkInfraType="aci", vlans="1-4094", vxlans="1-10000",
                    fwdMode="bridge", arpMode="flood", pvtSubnet="172.19.0.0/16"))  # fmt: skip
    _net(api, "default", "contiv", "10.1.1.1/24", gateway="10.1.1.254")
    _net(api, "default", "contiv-gw", "10.2.1.1/16", encap="vxlan")
    _net(api, "default", "contiv-ipv6", "10.3.1.1/16", encap="vxlan", ipv6Subnet="2016:0617::/120")
    api.group("default", "contiv-gw", "web")
    status = api.get("endpointGroups", "default:web")
    assert status.status_code == 200
    oper = api.inspect("endpointGroups", "default:web")["Oper"]
    assert 1 <= oper["pktTag"] <= 4094, oper
    api.ok(api.delete("endpointGroups", "default:web"))
    for name in ("contiv", "contiv-gw", "contiv-ipv6"):
        api.ok(api.delete("networks", f"default:{name}"))
