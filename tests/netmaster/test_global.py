"""Global settings (reference contiv.md §2): validation, and when each setting may change."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.netmaster import NetmasterProcess
from testbed.rest import Api, expect_error


def _global(api: Api) -> dict[str, Any]:
    g = api.ok(api.get("globals", "global"))
    return {k: v for k, v in g.items() if k not in ("key", "links", "link-sets")}


def _set(api: Api, **changes: Any):
    return api.post("globals", "global", {**_global(api), **changes})


def test_defaults(fresh_api: Api) -> None:
    assert _global(fresh_api) == {
        "name": "global",
        "networkInfraType": "default",
        "vlans": "1-4094",
        "vxlans": "1-10000",
        "fwdMode": "bridge",
        "arpMode": "proxy",
        "pvtSubnet": "172.19.0.0/16",
    }


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("networkInfraType", "xyz", "networkInfraType string invalid format"),
        ("vlans", "1-5000", "invalid vlan range"),
        ("vlans", "0-4094", "invalid vlan range"),
        ("vlans", "1", "vlans string invalid format"),
        ("vlans", "1?2", "vlans string invalid format"),
        ("vlans", "abcd", "vlans string invalid format"),
        ("vlans", "100-10", "invalid vlan range"),
        ("vxlans", "1-100000", "invalid vxlan range"),
        ("vxlans", "1-20000", "invalid vxlan range"),
        ("pvtSubnet", "172.19.0.0/24", "pvtSubnet string invalid format"),
        ("fwdMode", "switching", "fwdMode string invalid format"),
        ("arpMode", "gratuitous", "arpMode string invalid format"),
    ],
)
def test_invalid_settings(api: Api, field: str, value: str, fragment: str) -> None:
    before = _global(api)
    expect_error(_set(api, **{field: value}), 400, fragment)
    assert _global(api) == before


def test_singleton_key(api: Api) -> None:
    expect_error(
        api.post("globals", "other", name="other", vlans="1-10", vxlans="1-10", pvtSubnet="10.0.0.0/16"),
        400,
        "global key must be 'global'",
    )


def test_empty_modes_keep_current(fresh_api: Api) -> None:
    fresh_api.ok(_set(fresh_api, fwdMode="routing"))
    fresh_api.ok(_set(fresh_api, fwdMode="", arpMode="", networkInfraType=""))
    g = _global(fresh_api)
    assert (g["fwdMode"], g["arpMode"], g["networkInfraType"]) == ("routing", "proxy", "default")


def test_fwd_mode_change_refused_with_networks(fresh_api: Api) -> None:
    api = fresh_api
    api.network("default", "a", "10.1.1.0/24", encap="vlan")
    api.network("default", "b", "10.1.2.0/24", encap="vxlan")
    api.network("default", "c", "10.1.3.0/24", encap="vxlan")
    expect_error(
        _set(api, fwdMode="routing"), 409, "Unable to update forwarding mode due to existing 1 vlans and 2 vxlans"
    )
    for n in "abc":
        api.ok(api.delete("networks", f"default:{n}"))
    api.ok(_set(api, fwdMode="routing"))
    assert _global(api)["fwdMode"] == "routing"


def test_leaving_routing_refused_with_bgp(fresh_api: Api) -> None:
    api = fresh_api
    api.ok(_set(api, fwdMode="routing"))
    api.ok(api.post("Bgps", "h1", routerip="10.0.0.1/24"))
    expect_error(_set(api, fwdMode="bridge"), 409, "please delete existing Bgp configs")
    api.ok(api.delete("Bgps", "h1"))
    api.ok(_set(api, fwdMode="bridge"))


def test_pvt_subnet_and_infra_change_refused_with_networks(fresh_api: Api) -> None:
    api = fresh_api
    api.ok(_set(api, pvtSubnet="172.20.0.0/16"))
    api.network("default", "a", "10.1.1.0/24")
    expect_error(_set(api, pvtSubnet="172.21.0.0/16"), 409, "Unable to update private subnet")
    expect_error(_set(api, networkInfraType="aci"), 409, "Unable to update fabric mode")
    api.ok(_set(api, arpMode="flood"))  # arpMode may change at any time


def test_dynamic_vlan_range(fresh_api: Api) -> None:
    api = fresh_api
    for i, tag in enumerate((10, 11, 300)):
        api.network("default", f"v{i}", f"10.2.{i}.0/24", encap="vlan", pktTag=tag)
    api.ok(_set(api, vlans="9-301"))
    expect_error(_set(api, vlans="50-301"), 409, "cannot update the vlan range due to existing vlans 10-11, 300")
    expect_error(_set(api, vlans="1-200"), 409, "cannot update the vlan range")
    assert _global(api)["vlans"] == "9-301"
    # A request outside the narrowed range is refused.
    expect_error(
        api.post("networks", "default:v9", encap="vlan", subnet="10.2.9.0/24", pktTag=500),
        409,
        "requested vlan not available",
    )


def test_dynamic_vxlan_range(fresh_api: Api) -> None:
    api = fresh_api
    for i, vni in enumerate((1000, 1001, 2000, 2200)):
        api.network("default", f"x{i}", f"10.3.{i}.0/24", encap="vxlan", pktTag=vni)
    api.ok(_set(api, vxlans="1000-2500"))
    expect_error(_set(api, vxlans="2000-10000"), 409, "cannot update the vxlan range")
    expect_error(_set(api, vxlans="1000-2000"), 409, "cannot update the vxlan range")
    oper = api.inspect("globals", "global")["Oper"]
    assert oper["vxlansInUse"] == "1000-1001, 2000, 2200"
    assert oper["numNetworks"] == 4


def test_local_vlans_for_vxlan_networks(fresh_api: Api) -> None:
    api = fresh_api
    for i, vni in enumerate((1000, 1001, 2000)):
        api.network("default", f"x{i}", f"10.4.{i}.0/24", encap="vxlan", pktTag=vni)
    tags = [api.inspect("networks", f"default:x{i}")["Oper"]["pktTag"] for i in range(3)]
    assert tags == [1, 2, 3]


def test_global_needed_for_networks(fresh_api: Api) -> None:
    api = fresh_api
    api.ok(api.delete("globals", "global"))
    expect_error(
        api.post("networks", "default:n", encap="vlan", subnet="10.1.1.0/24"), 409, "Global configuration is not ready"
    )
    api.ok(api.post("globals", "global", name="global", vlans="1-4094", vxlans="1-10000", pvtSubnet="172.19.0.0/16"))
    api.network("default", "n", "10.1.1.0/24")
    expect_error(api.delete("globals", "global"), 409, "while networks exist")


def test_daemon_flags_set_modes(tmp_path) -> None:
    store = f"sqlite://{tmp_path}/nm.db"
    with NetmasterProcess.start(store, args=["--fwd-mode", "routing", "--infra", "aci"]) as nm:
        g = _global(Api(nm.url))
        assert (g["fwdMode"], g["networkInfraType"]) == ("routing", "aci")
    with NetmasterProcess.start(store) as nm:  # no flags: keep what is stored
        g = _global(Api(nm.url))
        assert (g["fwdMode"], g["networkInfraType"]) == ("routing", "aci")
