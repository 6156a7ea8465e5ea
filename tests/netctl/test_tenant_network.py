"""``netctl tenant`` and ``netctl network`` against a real netmaster."""

from __future__ import annotations

import json

from testbed.netctl import parse_table

from .conftest import Netctl


def test_tenant_lifecycle(netctl: Netctl) -> None:
    assert netctl("tenant", "create", "blue").stdout == "Creating tenant blue\n"
    names = netctl("tenant", "ls", "-q").stdout.split()
    assert "default" in names  # netmaster creates it at first start
    assert "blue" in names
    rows = parse_table(netctl("tenant", "list").stdout)
    assert {"Name": "blue", "Default Network": "", "Source": "netmaster"} in rows

    listed = json.loads(netctl("tenant", "ls", "-j").stdout)
    assert {t["tenantName"] for t in listed} >= {"default", "blue"}

    inspected = json.loads(netctl("tenant", "inspect", "blue").stdout)
    assert inspected["Config"]["tenantName"] == "blue"
    assert "Oper" in inspected

    assert netctl("tenant", "rm", "blue").stdout == "Deleting tenant blue\n"
    assert "blue" not in netctl("tenant", "ls", "-q").stdout.split()
    missing = netctl("tenant", "delete", "blue", expect=3)
    assert missing.stderr.startswith("ERROR: ")


def test_tenant_with_networks_cannot_be_deleted(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-s", "10.9.0.0/24", "n1")
    refused = netctl("tenant", "rm", tenant, expect=3)
    assert "network" in refused.stderr.lower()


def test_network_create_defaults_to_vxlan(netctl: Netctl, tenant: str) -> None:
    created = netctl("network", "create", "-t", tenant, "-s", "10.1.1.0/24", "-g", "10.1.1.254", "net1")
    assert created.stdout == f"Creating network {tenant}:net1\n"
    (config,) = json.loads(netctl("net", "ls", "-t", tenant, "-j").stdout)
    assert config["encap"] == "vxlan"
    assert config["nwType"] == "data"
    assert config["subnet"] == "10.1.1.0/24"
    assert config["gateway"] == "10.1.1.254"


def test_network_table_and_filters(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-e", "vlan", "-p", "123", "-s", "20.1.1.0/24", "-g", "20.1.1.1", "vl")
    netctl("net", "create", "-t", tenant, "--tag", "blue-tag", "-s", "20.1.2.0/24", "vx")
    rows = parse_table(netctl("net", "ls", "-t", tenant).stdout)
    assert [r["Network"] for r in rows] == ["vl", "vx"]
    vlan_row = rows[0]
    assert vlan_row["Tenant"] == tenant
    assert vlan_row["Encap type"] == "vlan"
    assert vlan_row["Packet tag"] == "123"
    assert vlan_row["Subnet"] == "20.1.1.0/24"
    assert vlan_row["Gateway"] == "20.1.1.1"
    assert rows[1]["Cfgd Tag"] == "blue-tag"
    assert rows[1]["Gateway"] == ""

    # Without -t only the default tenant's networks; -a shows every tenant.
    assert "vl" not in netctl("net", "ls", "-q").stdout.split()
    everything = parse_table(netctl("net", "ls", "-a").stdout)
    assert {(r["Tenant"], r["Network"]) for r in everything} >= {(tenant, "vl"), (tenant, "vx")}
    assert netctl("net", "list", "-t", tenant, "-q").stdout.split() == ["vl", "vx"]


def test_network_inspect_shows_config_and_oper(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-s", "30.1.1.0/24", "-g", "30.1.1.254", "n")
    inspected = json.loads(netctl("net", "inspect", "-t", tenant, "n").stdout)
    assert inspected["Config"]["networkName"] == "n"
    assert isinstance(inspected["Oper"], dict)


def test_network_delete(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-s", "40.1.1.0/24", "n")
    assert netctl("net", "rm", "-t", tenant, "n").stdout == f"Deleting network {tenant}:n\n"
    assert netctl("net", "ls", "-t", tenant, "-q").stdout == ""
    netctl("net", "delete", "-t", tenant, "n", expect=3)


def test_network_usage_errors_exit_1_with_help(netctl: Netctl) -> None:
    no_subnet = netctl("net", "create", "n", expect=1)
    assert "Subnet is required" in no_subnet.stderr
    assert "Usage: netctl net create" in no_subnet.stderr  # the sub-command's help is shown
    bad_gateway = netctl("net", "create", "-s", "10.0.0.0/24", "-g", "10.0.0", "n", expect=1)
    assert "Invalid gateway" in bad_gateway.stderr
    missing_name = netctl("net", "create", "-s", "10.0.0.0/24", expect=1)
    assert "Missing argument" in missing_name.stderr
    extra = netctl("net", "rm", "a", "b", expect=1)
    assert "unexpected extra argument" in extra.stderr
    assert netctl("net", "ls", "extra", expect=1).stdout == ""


def test_network_rest_errors_exit_3(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-s", "50.1.1.0/24", "a")
    # Contiv refuses a second network whose subnet overlaps in the same tenant.
    overlap = netctl("net", "create", "-t", tenant, "-s", "50.1.1.128/25", "b", expect=3)
    assert overlap.stderr.startswith("ERROR: ")
    assert overlap.stdout == ""  # nothing claims success
    netctl("net", "create", "-t", tenant, "-e", "bogus", "-s", "50.1.2.0/24", "c", expect=3)
    netctl("net", "create", "-t", "no-such-tenant", "-s", "50.1.3.0/24", "d", expect=3)
    unknown_tenant = netctl("net", "ls", "-t", "no-such-tenant", expect=3)
    assert unknown_tenant.stderr.startswith("ERROR: ")


def test_network_host_access_switch(netctl: Netctl, tenant: str) -> None:
    """``--host-access`` on create (not in Contiv), ``net update`` switches it, inspect shows netmaster's
    decision; a bad value is a usage error (exit 1, as Contiv) and creates nothing."""
    netctl("net", "create", "-t", tenant, "-s", "10.9.5.0/24", "on")
    netctl("net", "create", "-t", tenant, "-s", "10.9.6.0/24", "--host-access", "disabled", "off")
    netctl("net", "create", "-t", tenant, "-s", "10.9.7.0/24", "--host-access", "yes", "bad", expect=1)
    assert "bad" not in netctl("net", "ls", "-t", tenant, "-q").stdout.split()

    def decided(name: str) -> str:
        return json.loads(netctl("net", "inspect", "-t", tenant, name).stdout)["Oper"]["hostAccess"]

    assert (decided("on"), decided("off")) == ("enabled", "disabled")
    assert netctl("net", "update", "-t", tenant, "--host-access", "disabled", "on").stdout == \
        f"Updating network {tenant}:on\n"
    assert decided("on") == "disabled"
    netctl("net", "update", "-t", tenant, "--host-access", "enabled", "on")
    assert decided("on") == "enabled"
    netctl("net", "update", "-t", tenant, "--host-access", "enabled", "ghost", expect=3)
