"""``netctl group`` and ``netctl policy`` (with rules) against a real netmaster."""

from __future__ import annotations

import json

from testbed.netctl import parse_table

from .conftest import Netctl


def _network(netctl: Netctl, tenant: str, name: str = "net", subnet: str = "10.2.0.0/24") -> str:
    netctl("net", "create", "-t", tenant, "-s", subnet, name)
    return name


def test_group_lifecycle(netctl: Netctl, tenant: str) -> None:
    _network(netctl, tenant)
    netctl("policy", "create", "-t", tenant, "p1")
    netctl("policy", "create", "-t", tenant, "p2")
    created = netctl("group", "create", "-t", tenant, "-p", "p1", "-p", "p2", "--tag", "gtag", "net", "web")
    assert created.stdout == f"Creating EndpointGroup {tenant}:web\n"
    netctl("group", "create", "-t", tenant, "-r", "10.2.0.10-10.2.0.20", "net", "db")

    rows = parse_table(netctl("group", "ls", "-t", tenant).stdout)
    by_name = {r["Group"]: r for r in rows}
    assert by_name["web"]["Network"] == "net"
    assert by_name["web"]["Policies"] == "p1,p2"
    assert by_name["web"]["CfgdTag"] == "gtag"
    assert by_name["db"]["IP Pool"] == "10.2.0.10-10.2.0.20"
    assert netctl("group", "list", "-t", tenant, "-q").stdout.split() == ["db", "web"]

    listed = json.loads(netctl("group", "ls", "-t", tenant, "-j").stdout)
    assert {g["groupName"]: g["policies"] for g in listed}["web"] == ["p1", "p2"]

    inspected = json.loads(netctl("group", "inspect", "-t", tenant, "web").stdout)
    assert inspected["Config"]["networkName"] == "net"
    assert "Oper" in inspected

    # Re-running create updates the group (Contiv: POST on an existing key is an update).
    netctl("group", "create", "-t", tenant, "-p", "p1", "net", "web")
    (web,) = [g for g in json.loads(netctl("group", "ls", "-t", tenant, "-j").stdout) if g["groupName"] == "web"]
    assert web["policies"] == ["p1"]

    # A policy attached to a group cannot be deleted; nor can a network that has groups.
    netctl("policy", "rm", "-t", tenant, "p1", expect=3)
    netctl("net", "rm", "-t", tenant, "net", expect=3)
    assert netctl("group", "rm", "-t", tenant, "web").stdout == f"Deleting EndpointGroup {tenant}:web\n"
    netctl("group", "delete", "-t", tenant, "db")
    assert netctl("group", "ls", "-t", tenant, "-q").stdout == ""


def test_group_errors(netctl: Netctl, tenant: str) -> None:
    _network(netctl, tenant)
    missing_policy = netctl("group", "create", "-t", tenant, "-p", "nope", "net", "g", expect=3)
    assert missing_policy.stderr.startswith("ERROR: ")
    netctl("group", "create", "-t", tenant, "no-net", "g", expect=3)
    usage = netctl("group", "create", "-t", tenant, "net", expect=1)
    assert "Usage: netctl group create" in usage.stderr


def test_policy_lifecycle(netctl: Netctl, tenant: str) -> None:
    assert netctl("policy", "create", "-t", tenant, "pol").stdout == f"Creating policy {tenant}:pol\n"
    assert parse_table(netctl("policy", "ls", "-t", tenant).stdout) == [{"Tenant": tenant, "Policy": "pol"}]
    assert [p["policyName"] for p in json.loads(netctl("policy", "ls", "-t", tenant, "-j").stdout)] == ["pol"]
    inspected = json.loads(netctl("policy", "inspect", "-t", tenant, "pol").stdout)
    assert inspected["Config"]["policyName"] == "pol"
    assert netctl("policy", "rm", "-t", tenant, "pol").stdout == f"Deleting policy {tenant}:pol\n"
    assert netctl("policy", "ls", "-t", tenant, "-q").stdout == ""


def _sections(text: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    incoming, outgoing = text.split("Outgoing Rules:\n")
    assert incoming.startswith("Incoming Rules:\n")
    return parse_table(incoming), parse_table(outgoing)


def test_rules(netctl: Netctl, tenant: str) -> None:
    _network(netctl, tenant)
    netctl("policy", "create", "-t", tenant, "pol")
    netctl("group", "create", "-t", tenant, "net", "web")
    netctl("group", "create", "-t", tenant, "net", "app")

    added = netctl("policy", "rule-add", "-t", tenant, "-d", "in", "-g", "web", "-l", "tcp", "-P", "80", "pol", "1")
    assert added.stdout == f"Creating rule {tenant}:pol:1\n"
    netctl("policy", "rule-add", "-t", tenant, "-p", "10", "-j", "deny", "-l", "tcp", "pol", "2")
    netctl(
        "policy",
        "rule-add",
        "-t",
        tenant,
        "-d",
        "out",
        "-e",
        "app",
        "-p",
        "5",
        "-l",
        "udp",
        "-P",
        "53",
        "pol",
        "3",
    )
    netctl("policy", "rule-add", "-t", tenant, "-i", "192.168.1.0/24", "-l", "icmp", "pol", "4")

    incoming, outgoing = _sections(netctl("policy", "rule-ls", "-t", tenant, "pol").stdout)
    # Sorted by priority, as Contiv listed them.
    assert [r["Rule"] for r in incoming] == ["1", "4", "2"]
    assert incoming[0]["From EndpointGroup"] == "web"
    assert incoming[0]["Protocol"] == "tcp"
    assert incoming[0]["Port"] == "80"
    assert incoming[0]["Action"] == "allow"
    assert incoming[1]["From IpAddress"] == "192.168.1.0/24"
    assert incoming[2]["Priority"] == "10"
    assert incoming[2]["Action"] == "deny"
    assert outgoing == [
        {
            "Rule": "3",
            "Priority": "5",
            "To EndpointGroup": "app",
            "To Network": "",
            "To IpAddress": "",
            "Protocol": "udp",
            "Port": "53",
            "Action": "allow",
        }
    ]
    assert netctl("policy", "rule-ls", "-t", tenant, "-q", "pol").stdout.split() == ["1", "4", "3", "2"]
    as_json = json.loads(netctl("policy", "rule-ls", "-t", tenant, "-j", "pol").stdout)
    assert {r["ruleId"]: r["direction"] for r in as_json} == {"1": "in", "2": "in", "3": "out", "4": "in"}

    assert netctl("policy", "rule-rm", "-t", tenant, "pol", "2").stdout == f"Deleting rule {tenant}:pol:2\n"
    assert "2" not in netctl("policy", "rule-ls", "-t", tenant, "-q", "pol").stdout.split()
    netctl("policy", "rule-rm", "-t", tenant, "pol", "2", expect=3)


def test_rule_prechecks_exit_1_without_sending(netctl: Netctl, tenant: str) -> None:
    netctl("policy", "create", "-t", tenant, "pol")
    cases = [
        (["-d", "in", "-e", "web"], "to-group for incoming"),
        (["-d", "in", "-o", "net"], "to-network for incoming"),
        (["-d", "in", "-n", "net", "-g", "web"], "from-network together"),
        (["-d", "out", "-g", "web"], "from-group for outgoing"),
        (["-d", "out", "-i", "1.1.1.1"], "from-ip-address for outgoing"),
        (["-d", "both"], "Unknown direction"),
    ]
    for flags, message in cases:
        refused = netctl("policy", "rule-add", "-t", tenant, *flags, "pol", "9", expect=1)
        assert message in refused.stderr, flags
    assert netctl("policy", "rule-ls", "-t", tenant, "-q", "pol").stdout == ""


def test_rule_rest_errors_exit_3(netctl: Netctl, tenant: str) -> None:
    netctl("policy", "create", "-t", tenant, "pol")
    netctl("policy", "rule-add", "-t", tenant, "-p", "500", "pol", "1", expect=3)  # priority is 1-100
    netctl("policy", "rule-add", "-t", tenant, "-j", "maybe", "pol", "1", expect=3)
    netctl("policy", "rule-add", "-t", tenant, "-g", "no-such-group", "pol", "1", expect=3)
    netctl("policy", "rule-add", "-t", tenant, "no-such-policy", "1", expect=3)
    netctl("policy", "rule-ls", "-t", tenant, "no-such-policy", expect=3)
    netctl("policy", "rule-add", "-t", tenant, "pol", "1")
    # Contiv: "can not update a rule after its created".
    netctl("policy", "rule-add", "-t", tenant, "-j", "deny", "pol", "1", expect=3)
    usage = netctl("policy", "rule-add", "-t", tenant, "pol", expect=1)
    assert "Usage: netctl policy rule-add" in usage.stderr
