"""``netctl netprofile``, ``external-contracts`` and ``app-profile`` against a real netmaster."""

from __future__ import annotations

import json

from testbed.netctl import parse_table

from .conftest import Netctl


def test_netprofile_lifecycle(netctl: Netctl, tenant: str) -> None:
    created = netctl("netprofile", "create", "-t", tenant, "-b", "10 mbps", "-d", "5", "-s", "200", "gold")
    assert created.stdout == f"Creating netprofile {tenant}:gold\n"
    assert parse_table(netctl("netprofile", "ls", "-t", tenant).stdout) == [
        {"Name": "gold", "Tenant": tenant, "Bandwidth": "10Mbps", "DSCP": "5", "burst size": "200"}
    ]
    (profile,) = json.loads(netctl("netprofile", "ls", "-t", tenant, "-j").stdout)
    assert profile["DSCP"] == 5
    assert profile["bandwidth"] == "10 mbps"
    assert json.loads(netctl("netprofile", "inspect", "-t", tenant, "gold").stdout)["Config"]["burst"] == 200

    # A profile attached to a group cannot be deleted.
    netctl("net", "create", "-t", tenant, "-s", "10.3.0.0/24", "net")
    netctl("group", "create", "-t", tenant, "-n", "gold", "net", "g")
    netctl("netprofile", "rm", "-t", tenant, "gold", expect=3)
    in_force = {"rateKbps": 10_000, "burstKbits": 1600, "rateLimit": "OpenFlow meter per endpoint port (drop band)",
                "dscpMarking": 5}
    assert json.loads(netctl("netprofile", "inspect", "-t", tenant, "gold").stdout)["Oper"] == {
        **in_force, "endpointGroups": [f"{tenant}:g"]}
    group = json.loads(netctl("group", "inspect", "-t", tenant, "g").stdout)
    assert group["Oper"]["netProfile"] == {"profileName": "gold", **in_force}
    netctl("group", "rm", "-t", tenant, "g")
    assert netctl("netprofile", "rm", "-t", tenant, "gold").stdout == f"Deleting netprofile {tenant}:gold\n"
    assert netctl("netprofile", "ls", "-t", tenant, "-q").stdout == ""


def test_netprofile_rest_errors(netctl: Netctl, tenant: str) -> None:
    netctl("netprofile", "create", "-t", tenant, "-d", "64", "bad", expect=3)  # DSCP is 0-63
    netctl("netprofile", "create", "-t", tenant, "-b", "fast", "bad", expect=3)
    netctl("netprofile", "create", "-t", tenant, "-s", "1", "bad", expect=3)  # Contiv: burst size > 1500 bytes


def test_external_contracts(netctl: Netctl, tenant: str) -> None:
    consumed = netctl("external-contracts", "create", "-t", tenant, "-c", "-a", "uni/tn-common/brc-default", "cons")
    assert consumed.stdout == f"Creating ExternalContracts {tenant}:cons\n"
    netctl(
        "external-contracts",
        "create",
        "-t",
        tenant,
        "-p",
        "-a",
        "uni/tn-T/brc-a",
        "-a",
        "uni/tn-T/brc-b",
        "prov",
    )
    rows = parse_table(netctl("external-contracts", "ls", "-t", tenant).stdout)
    assert rows == [
        {"Tenant": tenant, "Name": "cons", "Type": "consumed", "Contracts": "uni/tn-common/brc-default"},
        {"Tenant": tenant, "Name": "prov", "Type": "provided", "Contracts": "uni/tn-T/brc-a,uni/tn-T/brc-b"},
    ]
    listed = json.loads(netctl("external-contracts", "ls", "-t", tenant, "-j").stdout)
    assert {c["contractsGroupName"]: c["contracts"] for c in listed}["prov"] == [
        "uni/tn-T/brc-a",
        "uni/tn-T/brc-b",
    ]
    assert netctl("external-contracts", "list", "-t", tenant, "-q").stdout.split() == ["cons", "prov"]

    # Groups reference contracts groups; a referenced one cannot be deleted.
    netctl("net", "create", "-t", tenant, "-s", "10.4.0.0/24", "net")
    netctl("group", "create", "-t", tenant, "-e", "cons", "-e", "prov", "net", "g")
    netctl("external-contracts", "rm", "-t", tenant, "cons", expect=3)
    netctl("group", "rm", "-t", tenant, "g")
    netctl("external-contracts", "rm", "-t", tenant, "cons")
    netctl("external-contracts", "delete", "-t", tenant, "prov")
    assert netctl("external-contracts", "ls", "-t", tenant, "-q").stdout == ""


def test_external_contracts_usage_errors(netctl: Netctl, tenant: str) -> None:
    both = netctl("external-contracts", "create", "-t", tenant, "-c", "-p", "-a", "x", "e", expect=1)
    assert "Cannot use both provided and consumed" in both.stderr
    neither = netctl("external-contracts", "create", "-t", tenant, "-a", "x", "e", expect=1)
    assert "Either provided or consumed must be specified" in neither.stderr
    none = netctl("external-contracts", "create", "-t", tenant, "-c", "e", expect=1)
    assert "Contracts not provided" in none.stderr
    assert netctl("external-contracts", "ls", "-t", tenant, "-q").stdout == ""


def test_app_profile_lifecycle(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-s", "10.5.0.0/24", "net")
    for group in ("web", "app", "db"):
        netctl("group", "create", "-t", tenant, "net", group)

    created = netctl("app-profile", "create", "-t", tenant, "-g", "web,app", "prof")
    assert created.stdout == f"Creating AppProfile {tenant}:prof\n"
    assert parse_table(netctl("app-profile", "ls", "-t", tenant).stdout) == [
        {"Tenant": tenant, "AppProfile": "prof", "Groups": "web,app"}
    ]
    assert parse_table(netctl("app-profile", "group-ls", "-t", tenant, "prof").stdout) == [
        {"Tenant": tenant, "AppProfile": "prof", "Group": "web"},
        {"Tenant": tenant, "AppProfile": "prof", "Group": "app"},
    ]
    assert json.loads(netctl("app-profile", "group-ls", "-t", tenant, "-j", "prof").stdout)["endpointGroups"] == [
        "web",
        "app",
    ]

    updated = netctl("app-profile", "update", "-t", tenant, "-g", "db", "-g", "web", "prof")
    assert updated.stdout == f"Updating AppProfile {tenant}:prof\n"
    assert netctl("app-profile", "group-list", "-t", tenant, "-q", "prof").stdout.split() == ["db", "web"]
    # A group in an app profile cannot be deleted.
    netctl("group", "rm", "-t", tenant, "db", expect=3)

    assert netctl("app-profile", "rm", "-t", tenant, "prof").stdout == f"Deleting AppProfile {tenant}:prof\n"
    assert netctl("app-profile", "ls", "-t", tenant, "-q").stdout == ""
    netctl("group", "rm", "-t", tenant, "db")


def test_app_profile_errors(netctl: Netctl, tenant: str) -> None:
    netctl("app-profile", "create", "-t", tenant, "-g", "no-such-group", "prof", expect=3)
    netctl("app-profile", "update", "-t", tenant, "-g", "x", "never-created", expect=3)
    netctl("app-profile", "group-ls", "-t", tenant, "never-created", expect=3)
    assert netctl("app-profile", "ls", "-t", tenant, "-q").stdout == ""
