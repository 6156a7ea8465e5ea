"""Contiv's own netctl (the Go binary) against this netmaster: create, inspect, refusal, delete of every kind.

What a Contiv user's tooling sees. netmaster runs with ``--compat-errors`` so that refusals reach the
user: Contiv's netctl prints the response body only on HTTP 500 (a 4xx shows as its status line, a
404 as "Page not found!"); the last test shows that default answer. Skipped, with that reason, where
the reference binary is absent (a clone outside this workplace).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.netmaster import NetmasterProcess

CONTIV_NETCTL = Path(__file__).resolve().parents[3] / "shared" / "contiv-reference" / "netctl"

if not CONTIV_NETCTL.exists():
    pytest.skip(f"Contiv's netctl is absent ({CONTIV_NETCTL}): nothing to compare with", allow_module_level=True)


class ContivNetctl:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(CONTIV_NETCTL), "--netmaster", self.url, *args], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == expect, (
            f"netctl {' '.join(args)} exited {done.returncode}, expected {expect}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
        return done

    def refused(self, *args: str, reason: str) -> None:
        """A refusal: Contiv's netctl exits 3 and logs the server's reason."""
        done = self(*args, expect=3)
        assert reason in done.stderr, done.stderr

    def inspect(self, *args: str) -> dict[str, Any]:
        return json.loads(self(*args).stdout)


@pytest.fixture(scope="module")
def netctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContivNetctl]:
    log = tmp_path_factory.mktemp("netmaster") / "netmaster.log"
    with NetmasterProcess.start("memory://", args=["--compat-errors"], log_path=log) as nm:
        yield ContivNetctl(nm.url)


def test_tenant_network_group(netctl: ContivNetctl) -> None:
    assert "Creating tenant: blue" in netctl("tenant", "create", "blue").stdout
    assert "blue" in netctl("tenant", "ls").stdout.split()
    netctl.refused("tenant", "create", "bad:name", reason="tenantName string invalid format")

    netctl("net", "create", "-t", "blue", "-e", "vxlan", "-s", "10.1.1.0/24", "-g", "10.1.1.254", "web-net")
    netctl("net", "create", "-t", "blue", "-e", "vlan", "-s", "10.1.2.0/24", "--tag", "db-tag", "db-net")
    netctl.refused("net", "create", "-t", "blue", "-e", "vlan", "-s", "10.1.1.0/25", "other",
                   reason="subnet 10.1.1.0/25 overlaps with network web-net")  # fmt: skip
    web = netctl.inspect("net", "inspect", "-t", "blue", "web-net")
    assert web["Config"]["links"]["Tenant"] == {"type": "tenant", "key": "blue"}
    assert web["Oper"]["networkTag"] == "web-net.blue"
    assert web["Oper"]["allocatedIPAddresses"] == "10.1.1.254"
    assert web["Oper"].get("allocatedAddressesCount", 0) == 0  # Go's omitempty: 0 is not printed
    assert netctl.inspect("net", "inspect", "-t", "blue", "db-net")["Oper"]["networkTag"] == "db-tag"
    assert "web-net" in netctl("net", "ls", "-t", "blue").stdout

    netctl("group", "create", "-t", "blue", "web-net", "web")
    netctl("group", "create", "-t", "blue", "--tag", "db-epg", "db-net", "db")
    assert netctl.inspect("group", "inspect", "-t", "blue", "web")["Oper"]["groupTag"] == "web.blue"
    assert netctl.inspect("group", "inspect", "-t", "blue", "db")["Oper"]["groupTag"] == "db-epg"
    netctl.refused("group", "create", "-t", "blue", "no-net", "g", reason="no-net")
    netctl.refused("tenant", "rm", "blue", reason="cannot delete blue")
    netctl.refused("net", "rm", "-t", "blue", "web-net", reason="endpoint groups")
    netctl.refused("net", "inspect", "-t", "blue", "nonexist", reason="network blue:nonexist not found")

    for group in ("web", "db"):
        netctl("group", "rm", "-t", "blue", group)
    for net in ("web-net", "db-net"):
        netctl("net", "rm", "-t", "blue", net)
    netctl("tenant", "rm", "blue")
    assert "blue" not in netctl("tenant", "ls").stdout.split()
    netctl.refused("tenant", "rm", "blue", reason="tenant blue not found")


def test_policy_rules_profiles_contracts(netctl: ContivNetctl) -> None:
    netctl("tenant", "create", "red")
    netctl("net", "create", "-t", "red", "-e", "vlan", "-s", "10.2.1.0/24", "rnet")
    netctl("policy", "create", "-t", "red", "pol")
    netctl("policy", "rule-add", "-t", "red", "-d", "in", "-l", "tcp", "-P", "80", "-j", "allow", "pol", "1")
    netctl.refused("policy", "rule-add", "-t", "red", "-d", "in", "-l", "bogus", "pol", "2",
                   reason="protocol string invalid format")  # fmt: skip
    rules = netctl("policy", "rule-ls", "-t", "red", "pol").stdout
    assert [line.split() for line in rules.splitlines() if line.startswith("1 ")] == [["1", "1", "tcp", "80", "allow"]]
    policy = netctl.inspect("policy", "inspect", "-t", "red", "pol")
    assert list(policy["Config"]["link-sets"]["Rules"]) == ["red:pol:1"]

    netctl("netprofile", "create", "-t", "red", "-b", "10 kbps", "-d", "6", "np")
    netctl.refused("netprofile", "create", "-t", "red", "-b", "fast", "np2", reason="bandwidth string invalid format")
    assert netctl.inspect("netprofile", "inspect", "-t", "red", "np")["Config"]["DSCP"] == 6

    netctl("group", "create", "-t", "red", "-p", "pol", "-n", "np", "rnet", "rg")
    netctl("app-profile", "create", "-t", "red", "-g", "rg", "app")
    netctl.refused("app-profile", "create", "-t", "red", "-g", "nosuch", "app2", reason="red:nosuch not found")
    assert netctl("app-profile", "group-ls", "-t", "red", "app").stdout.split() == ["rg"]
    netctl.refused("group", "rm", "-t", "red", "rg", reason="app")

    netctl("external-contracts", "create", "-t", "red", "-c", "-a", "uni/tn-common/brc-default", "ec")
    assert "uni/tn-common/brc-default" in netctl("external-contracts", "ls", "-t", "red").stdout

    netctl("service", "create", "-t", "red", "-s", "rnet", "-l", "app=web", "-p", "80:8080:TCP", "svc1")
    assert "svc1" in netctl("service", "ls", "-t", "red").stdout
    netctl.refused("service", "create", "-t", "red", "-s", "nonet", "-l", "app=web", "-p", "80:8080:TCP", "svc2",
                   reason="nonet")  # fmt: skip

    netctl("service", "rm", "-t", "red", "svc1")
    netctl("app-profile", "rm", "-t", "red", "app")
    netctl("external-contracts", "rm", "-t", "red", "ec")
    netctl("group", "rm", "-t", "red", "rg")
    netctl("netprofile", "rm", "-t", "red", "np")
    netctl("policy", "rule-rm", "-t", "red", "pol", "1")
    assert not [line for line in netctl("policy", "rule-ls", "-t", "red", "pol").stdout.splitlines()
                if line.startswith("1 ")]  # fmt: skip
    netctl("policy", "rm", "-t", "red", "pol")
    netctl("net", "rm", "-t", "red", "rnet")
    netctl("tenant", "rm", "red")
    assert "red" not in netctl("tenant", "ls").stdout.split()


def test_bgp_global_aci_gw(netctl: ContivNetctl) -> None:
    netctl("bgp", "create", "--router-ip", "50.1.1.1/24", "--as", "65002", "--neighbor-as", "500",
           "--neighbor", "50.1.1.2", "host1")  # fmt: skip
    assert netctl.inspect("bgp", "inspect", "host1")["Config"]["routerip"] == "50.1.1.1/24"
    assert "host1" in netctl("bgp", "ls").stdout
    netctl("bgp", "rm", "host1")
    netctl.refused("bgp", "rm", "host1", reason="not found")

    netctl("global", "set", "--vlan-range", "1-2000")
    assert "Vlan Range: 1-2000" in netctl("global", "info").stdout
    netctl.refused("global", "set", "--fwd-mode", "bogus", reason="fwdMode string invalid format")

    netctl("aci-gw", "set", "-d", "phys", "-e", "yes", "-i", "no")
    assert "Physical domain: phys" in netctl("aci-gw", "info").stdout
    netctl.refused("aci-gw", "set", "-n", "node-101", reason="nodeBindings string invalid format")


def test_without_compat_errors_contiv_netctl_shows_only_the_status(tmp_path: Path) -> None:
    """The default (4xx + JSON body, for clients that read bodies): Contiv's netctl prints the status line."""
    with NetmasterProcess.start("memory://", log_path=tmp_path / "nm.log") as nm:
        netctl = ContivNetctl(nm.url)
        done = netctl("tenant", "create", "bad:name", expect=3)
        assert "400 Bad Request" in done.stderr
        assert "invalid format" not in done.stderr
        netctl("tenant", "create", "t1")
        netctl("net", "create", "-t", "t1", "-s", "10.1.1.0/24", "n")
        done = netctl("tenant", "rm", "t1", expect=3)
        assert "409 Conflict" in done.stderr
