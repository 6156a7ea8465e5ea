"""Tenants from the APIC, external contracts while the gateway is down, and ``default-group`` endpoints."""

from __future__ import annotations

import subprocess
import sys
import time

from testbed.netctl import parse_table

from .conftest import Stack, eventually


def _tenants(stack: Stack) -> dict[str, dict[str, object]]:
    return {t["tenantName"]: t for t in stack.nm.ok(stack.nm.http.get("/api/v1/tenants/"))}


def test_tenant_created_in_the_apic_is_imported_usable_and_listed(stack: Stack) -> None:
    nm, apic = stack.nm, stack.apic
    apic.post(
        "uni",
        {
            "fvTenant": {
                "attributes": {"name": "fromapic"},
                "children": [
                    {"fvCtx": {"attributes": {"name": "prod"}}},
                    {
                        "fvBD": {
                            "attributes": {"name": "bd1"},
                            "children": [
                                {"fvRsCtx": {"attributes": {"tnFvCtxName": "prod"}}},
                                {"fvSubnet": {"attributes": {"ip": "10.9.0.1/24"}}},
                            ],
                        }
                    },
                ],
            }
        },
    )
    tenant = eventually(lambda: _tenants(stack).get("fromapic"), what="imported tenant")
    assert tenant["source"] == "apic"
    oper = nm.inspect("tenants", "fromapic")["Oper"]
    assert oper["source"] == "apic"
    assert oper["apic"]["vrfs"] == ["prod"]
    assert oper["apic"]["bridgeDomains"] == [{"name": "bd1", "vrf": "prod", "subnets": ["10.9.0.1/24"]}]

    # Usable at once: a network, a group, an app profile pushed into the administrator's tenant.
    nm.network("fromapic", subnet="10.9.0.0/24", gateway="10.9.0.1")
    nm.group("fromapic", "web")
    key = nm.profile("fromapic", "prof", "web")
    nm.wait_synced(key)
    assert "uni/tn-fromapic/ap-prof/epg-web" in apic.tree("uni/tn-fromapic")

    listed = subprocess.run(
        [sys.executable, "-m", "netmaster.cli.netctl", "--netmaster", nm.url, "tenant", "ls"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = {r["Name"]: r for r in parse_table(listed.stdout)}
    assert rows["fromapic"]["Source"] == "apic"
    assert rows["default"]["Source"] == "netmaster"
    # System tenants stay out.
    assert not {"common", "infra", "mgmt"} & set(_tenants(stack))
    assert "fromapic" in nm.inspect("aciGws", "aciGw")["Oper"]["tenantImport"]["apicTenants"]


def test_tenant_removed_from_the_apic_goes_unless_in_use(stack: Stack) -> None:
    nm, apic = stack.nm, stack.apic
    for name in ("gone1", "gone2"):
        apic.post("uni", {"fvTenant": {"attributes": {"name": name}}})
    eventually(lambda: {"gone1", "gone2"} <= set(_tenants(stack)), what="both imported")
    nm.network("gone2")
    apic.delete("uni/tn-gone1")
    apic.delete("uni/tn-gone2")
    eventually(lambda: "gone1" not in _tenants(stack), what="unused tenant removed")
    kept = eventually(lambda: nm.inspect("tenants", "gone2")["Oper"]["apic"].get("missing"), what="marked")
    assert kept is True
    report = nm.inspect("aciGws", "aciGw")["Oper"]["tenantImport"]
    assert "gone2" in report["kept"]
    nm.delete("networks", "gone2:net")
    eventually(lambda: "gone2" not in _tenants(stack), what="tenant removed once unused")


def test_a_tenant_deleted_in_netmaster_is_not_resurrected(stack: Stack) -> None:
    """aci-gw created the tenant in the APIC for netmaster; the importer must not bring it back."""
    nm = stack.nm
    t = nm.tenant()
    nm.network(t)
    nm.group(t, "web")
    key = nm.profile(t, "prof", "web")
    nm.wait_synced(key)
    for plural, obj in (("appProfiles", key), ("endpointGroups", f"{t}:web"), ("networks", f"{t}:net")):
        nm.delete(plural, obj)
    nm.delete("tenants", t)
    time.sleep(1.5)  # three import rounds
    assert t not in _tenants(stack)


def test_external_contracts_refused_with_503_while_the_gateway_is_down(stack: Stack) -> None:
    nm = stack.nm
    t = nm.tenant()
    stack.gw.stop()
    try:
        response = nm.post(
            "extContractsGroups",
            f"{t}:g",
            tenantName=t,
            contractsGroupName="g",
            contractsType="provided",
            contracts=["uni/tn-common/brc-default"],
        )
    finally:
        stack.gw.run()
    assert response.status_code == 503
    assert "cannot validate external contracts against the APIC" in response.json()["error"]
    assert (
        nm.post(
            "extContractsGroups",
            f"{t}:g",
            tenantName=t,
            contractsGroupName="g",
            contractsType="provided",
            contracts=["uni/tn-common/brc-default"],
        ).status_code
        == 200
    )


def test_endpoint_without_group_lands_in_default_group(stack: Stack) -> None:
    nm = stack.nm
    t = nm.tenant()
    nm.network(t)
    body = {"endpointID": f"{t}-c1", "tenantName": t, "networkName": "net", "host": "h1"}
    refused = nm.http.post("/api/v1/endpoints/", json=body)
    assert refused.status_code == 404
    assert "default-group" in refused.json()["error"]
    vlan = nm.group(t, "default-group")
    ep = nm.ok(nm.http.post("/api/v1/endpoints/", json=body))
    assert ep["groupName"] == "default-group"
    assert ep["groupPktTag"] == vlan
    assert nm.ok(nm.http.post("/api/v1/endpoints/", json=body)) == ep  # a retried create is the same endpoint
    assert nm.inspect("endpointGroups", f"{t}:default-group")["Oper"]["numEndpoints"] == 1
    nm.ok(nm.http.delete(f"/api/v1/endpoints/{t}-c1/"))
