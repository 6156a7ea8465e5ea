"""``netctl global``, ``aci-gw`` and ``bgp`` against a real netmaster (their own server: they change
cluster-wide settings)."""

from __future__ import annotations

import json

from .conftest import Netctl


def _info(netctl: Netctl, group: str) -> dict[str, str]:
    lines = netctl(group, "info").stdout.splitlines()
    return {label: value.strip() for label, _, value in (line.partition(":") for line in lines)}


def test_global_info_and_inspect(netctl: Netctl) -> None:
    info = _info(netctl, "global")
    assert list(info) == [
        "Fabric mode",
        "Forward mode",
        "ARP mode",
        "Vlan Range",
        "Vxlan range",
        "Private subnet",
    ]
    assert info["Vlan Range"] == "1-4094"
    assert info["Vxlan range"] == "1-10000"
    assert info["Private subnet"] == "172.19.0.0/16"
    (as_json,) = json.loads(netctl("global", "info", "-j").stdout)
    assert as_json["vlans"] == "1-4094"
    inspected = json.loads(netctl("global", "inspect").stdout)
    assert inspected["Config"]["vxlans"] == "1-10000"
    assert "Oper" in inspected


def test_global_set_changes_only_what_is_given(netctl: Netctl) -> None:
    before = _info(netctl, "global")
    assert netctl("global", "set", "-v", "100-3000", "-a", "flood").stdout == "Updating global settings\n"
    after = _info(netctl, "global")
    assert after["Vlan Range"] == "100-3000"
    assert after["ARP mode"] == "flood"
    for unchanged in ("Fabric mode", "Forward mode", "Vxlan range", "Private subnet"):
        assert after[unchanged] == before[unchanged]
    netctl("global", "set", "-v", "1-4094", "-a", "proxy")


def test_global_set_errors(netctl: Netctl) -> None:
    nothing = netctl("global", "set", expect=1)
    assert "Nothing to set" in nothing.stderr
    bad = netctl("global", "set", "-v", "0-5000", expect=3)
    assert bad.stderr.startswith("ERROR: ")
    netctl("global", "set", "-s", "10.0.0.0/24", expect=3)  # pvtSubnet must be a /16
    netctl("global", "set", "-f", "xyz", expect=3)
    assert _info(netctl, "global")["Vlan Range"] == "1-4094"


def test_fwd_mode_change_refused_while_networks_exist(netctl: Netctl) -> None:
    netctl("net", "create", "-s", "10.6.0.0/24", "blocker")
    refused = netctl("global", "set", "-b", "routing", expect=3)
    assert refused.stderr.startswith("ERROR: ")
    netctl("net", "rm", "blocker")


def test_aci_gw(netctl: Netctl) -> None:
    assert netctl("aci-gw", "set", "-d", "containerDom", "-n", "topology/pod-1/node-101").stdout == (
        "Updating aci-gw settings\n"
    )
    info = _info(netctl, "aci-gw")
    assert info == {
        "Path bindings": "",
        "Node bindings": "topology/pod-1/node-101",
        "Physical domain": "containerDom",
        "Enforce policies": "yes",
        "Include Common-Tenant": "no",
    }
    # Only the given settings change.
    netctl("aci-gw", "set", "-i", "yes", "-p", "topology/pod-1/paths-101/pathep-[eth1/14]")
    info = _info(netctl, "aci-gw")
    assert info["Include Common-Tenant"] == "yes"
    assert info["Physical domain"] == "containerDom"
    assert info["Path bindings"] == "topology/pod-1/paths-101/pathep-[eth1/14]"
    (as_json,) = json.loads(netctl("aci-gw", "info", "-j").stdout)
    assert as_json["nodeBindings"] == "topology/pod-1/node-101"
    assert json.loads(netctl("aci-gw", "inspect").stdout)["Config"]["physicalDomain"] == "containerDom"
    netctl("aci-gw", "set", "-e", "perhaps", expect=3)


def test_bgp_lifecycle(netctl: Netctl) -> None:
    created = netctl(
        "bgp", "create", "--router-ip", "50.1.1.1/24", "--as", "65002", "--neighbor-as", "500",
        "--neighbor", "50.1.1.200", "host1",
    )  # fmt: skip
    assert created.stdout == "Creating Bgp host1\n"
    assert netctl("bgp", "ls").stdout.splitlines()[2].split() == [
        "host1",
        "50.1.1.1/24",
        "65002",
        "50.1.1.200",
        "500",
    ]
    assert netctl("bgp", "ls", "-q").stdout == "host1\n"
    (as_json,) = json.loads(netctl("bgp", "list", "-j").stdout)
    assert as_json["neighbor-as"] == "500"
    assert json.loads(netctl("bgp", "inspect", "host1").stdout)["Config"]["routerip"] == "50.1.1.1/24"
    assert netctl("bgp", "rm", "host1").stdout == "Deleting Bgp host1\n"
    assert netctl("bgp", "ls", "-q").stdout == ""
    netctl("bgp", "inspect", "host1", expect=3)


def test_bgp_usage_errors(netctl: Netctl) -> None:
    missing = netctl("bgp", "create", "--router-ip", "50.1.1.1/24", "h", expect=1)
    assert "Missing attributes" in missing.stderr
    flags = ["--as", "1", "--neighbor-as", "2"]
    bad_cidr = netctl("bgp", "create", "--router-ip", "50.1.1.1", *flags, "--neighbor", "50.1.1.2", "h", expect=1)
    assert "Wrong CIDR format" in bad_cidr.stderr
    bad_ip = netctl("bgp", "create", "--router-ip", "50.1.1.1/24", *flags, "--neighbor", "x", "h", expect=1)
    assert "Wrong IP format" in bad_ip.stderr
