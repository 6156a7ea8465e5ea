"""``netctl service``, ``endpoint`` and ``version`` against a real netmaster."""

from __future__ import annotations

import json

import httpx

from testbed.netctl import parse_table

from .conftest import Netctl


def test_service_lifecycle(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-s", "10.7.0.0/24", "net")
    created = netctl(
        "service", "create", "-t", tenant, "-s", "net", "-l", "app=web", "-l", "tier=front",
        "-p", "80:8080:TCP", "-ip", "10.7.0.50", "svc",
    )  # fmt: skip
    assert created.stdout == f"Creating ServiceLB {tenant}:svc\n"
    assert parse_table(netctl("service", "ls", "-t", tenant).stdout) == [
        {
            "ServiceName": "svc",
            "Tenant": tenant,
            "Network": "net",
            "Selectors": "app=web,tier=front",
            "Ports": "80:8080:TCP",
            "Preferred IP": "10.7.0.50",
        }
    ]
    (as_json,) = json.loads(netctl("service", "ls", "-t", tenant, "-j").stdout)
    assert as_json["selectors"] == ["app=web", "tier=front"]
    inspected = json.loads(netctl("service", "inspect", "-t", tenant, "svc").stdout)
    assert inspected["Config"]["serviceName"] == "svc"
    assert inspected["Oper"]["serviceVip"] == "10.7.0.50"
    # The network has a service: it cannot be deleted.
    netctl("net", "rm", "-t", tenant, "net", expect=3)
    assert netctl("service", "rm", "-t", tenant, "svc").stdout == f"Deleting ServiceLB {tenant}:svc\n"
    assert netctl("service", "list", "-t", tenant, "-q").stdout == ""


def test_service_rest_errors(netctl: Netctl, tenant: str) -> None:
    netctl("net", "create", "-t", tenant, "-s", "10.8.0.0/24", "net")
    netctl("service", "create", "-t", tenant, "-s", "net", "-p", "80:80:TCP", "nosel", expect=3)
    netctl("service", "create", "-t", tenant, "-s", "net", "-l", "a=b", "-p", "80:80:SCTP", "badport", expect=3)
    netctl("service", "create", "-t", tenant, "-s", "nonet", "-l", "a=b", "-p", "80:80:TCP", "nonet", expect=3)
    assert netctl("service", "ls", "-t", tenant, "-q").stdout == ""


def test_endpoint_commands_without_endpoints(netctl: Netctl) -> None:
    assert netctl("endpoint", "ls", "-j").stdout.strip() == "[]"
    missing = netctl("ep", "inspect", "no-such-container", expect=3)
    assert missing.stderr.startswith("ERROR: ")
    netctl("ep", "inspect", expect=1)


def test_version(netctl: Netctl) -> None:
    lines = netctl("version").stdout.splitlines()
    assert lines[0] == "Client Version:"
    assert lines[1].startswith("Version:")
    assert "Server Version:" in lines
    assert any(line.startswith("version:") for line in lines)
    as_json = json.loads(netctl("version", "-j").stdout)
    assert set(as_json) == {"client", "server"}
    assert "version" in as_json["server"]


def test_endpoints_created_by_an_agent(netctl: Netctl, netmaster_url: str, tenant: str) -> None:
    """Endpoints are made by agents over REST; netctl lists and inspects them."""
    netctl("net", "create", "-t", tenant, "-s", "10.9.9.0/24", "-g", "10.9.9.254", "net")
    netctl("group", "create", "-t", tenant, "net", "web")
    record = {
        "endpointID": "ep-4f2a9c",
        "tenantName": tenant,
        "networkName": "net",
        "groupName": "web",
        "containerID": "c0ffee1234567890",
        "containerName": "web-1",
        "host": "host1",
    }
    response = httpx.post(f"{netmaster_url}/api/v1/endpoints/", json=record, timeout=10)
    assert response.status_code == 200, response.text

    (row,) = parse_table(netctl("ep", "ls", "-t", tenant).stdout)
    assert row == {
        "Endpoint ID": "ep-4f2a9c",
        "Container": "web-1",
        "Tenant": tenant,
        "Network": "net",
        "Group": "web",
        "IP Address": "10.9.9.1",
        "MAC Address": "02:02:0a:09:09:01",
        "Host": "host1",
    }
    assert "ep-4f2a9c" in netctl("endpoint", "list", "-a", "-q").stdout.split()
    assert "ep-4f2a9c" not in netctl("ep", "ls", "-q").stdout.split()  # other tenant

    # Contiv matches the id, the container id or the container name (substring).
    for query in ("ep-4f2a9c", "c0ffee12", "web-1"):
        oper = json.loads(netctl("ep", "inspect", query).stdout)["Oper"]
        assert oper["endpointID"] == "ep-4f2a9c"
        assert oper["containerName"] == "web-1"
        assert oper["ipAddress"][0] == "10.9.9.1"

    # The group and network now have an endpoint: deleting them is refused.
    netctl("group", "rm", "-t", tenant, "web", expect=3)
    httpx.delete(f"{netmaster_url}/api/v1/endpoints/ep-4f2a9c/", timeout=10).raise_for_status()
    assert netctl("ep", "ls", "-t", tenant, "-q").stdout == ""
    netctl("group", "rm", "-t", tenant, "web")
