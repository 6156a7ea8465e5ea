"""A network's ``hostAccess`` (not in Contiv; docs/host-access.md): enabled by default, validated, the
one field an update may change, and decided by netmaster (``Oper.hostAccess``): a subnet that overlaps
another tenant's host-access network, or the private subnet, is refused with the reason, and the
network that had host access first keeps it."""

from __future__ import annotations

from testbed.rest import Api, expect_error


def _state(api: Api, key: str) -> str:
    return api.inspect("networks", key)["Oper"]["hostAccess"]


def test_default_enabled_validated_and_switchable(api: Api) -> None:
    t = api.tenant()
    api.network(t, "n", "10.77.1.0/24")
    assert api.ok(api.get("networks", f"{t}:n"))["hostAccess"] == "enabled"
    assert _state(api, f"{t}:n") == "enabled"
    expect_error(api.post("networks", f"{t}:bad", tenantName=t, networkName="bad", encap="vxlan",
                          subnet="10.77.2.0/24", hostAccess="on"), 400, "hostAccess")
    assert api.get("networks", f"{t}:bad").status_code == 404

    body = {k: v for k, v in api.ok(api.get("networks", f"{t}:n")).items() if k != "key"}
    api.ok(api.post("networks", f"{t}:n", {**body, "hostAccess": "disabled"}))
    assert _state(api, f"{t}:n") == "disabled"
    expect_error(api.post("networks", f"{t}:n", {**body, "gateway": "10.77.1.254"}), 409,
                 "Cant change network parameters")
    api.ok(api.post("networks", f"{t}:n", body))
    assert _state(api, f"{t}:n") == "enabled"


def test_overlaps_between_tenants_and_with_the_private_subnet_are_refused(api: Api) -> None:
    first, second = api.tenant(), api.tenant()
    api.network(first, "n", "10.77.8.0/24")
    api.network(second, "n", "10.77.8.128/25")  # another tenant may reuse addresses: created, not served
    refused = _state(api, f"{second}:n")
    assert refused.startswith("refused: subnet 10.77.8.128/25 overlaps network " f"{first}:n"), refused
    assert _state(api, f"{first}:n") == "enabled", "the network that had host access first keeps it"

    body = {k: v for k, v in api.ok(api.get("networks", f"{first}:n")).items() if k != "key"}
    api.ok(api.post("networks", f"{first}:n", {**body, "hostAccess": "disabled"}))
    again = {k: v for k, v in api.ok(api.get("networks", f"{second}:n")).items() if k != "key"}
    api.ok(api.post("networks", f"{second}:n", again))  # an update decides again
    assert _state(api, f"{second}:n") == "enabled"

    api.network(first, "pvt", "172.19.3.0/24")
    assert _state(api, f"{first}:pvt") == "refused: subnet 172.19.3.0/24 overlaps the private subnet 172.19.0.0/16"
