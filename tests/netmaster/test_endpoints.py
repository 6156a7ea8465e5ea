"""The endpoint API agents use: allocation, idempotency, refusals that change nothing."""

from __future__ import annotations

from testbed.rest import Api, expect_error


def _counts(api: Api, t: str, net: str = "net") -> tuple[int, str]:
    oper = api.inspect("networks", f"{t}:{net}")["Oper"]
    return oper["numEndpoints"], oper["allocatedIPAddresses"]


def test_create_returns_everything_an_agent_needs(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.20.0.0/24", gateway="10.20.0.1", pktTag=5020)
    api.group(t, "net", "web")
    ep = api.ok(api.endpoint(f"{t}-c1", t, "net", groupName="web", containerID="c1", host="h1", labels={"app": "web"}))
    assert ep["ipAddress"] == "10.20.0.2"
    assert ep["macAddress"] == "02:02:0a:14:00:02"
    assert (ep["gateway"], ep["subnetLen"], ep["encap"]) == ("10.20.0.1", 24, "vxlan")
    assert ep["externalPktTag"] == 5020
    assert ep["endpointGroupId"] == api.inspect("endpointGroups", f"{t}:web")["Oper"]["endpointGroupId"]
    assert api.ok(api.http.get(f"/api/v1/endpoints/{t}-c1/"))["host"] == "h1"


def test_create_is_idempotent_for_the_same_endpoint(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    first = api.ok(api.endpoint(f"{t}-c", t, "net", containerID="c"))
    again = api.ok(api.endpoint(f"{t}-c", t, "net", containerID="c"))
    assert first["ipAddress"] == again["ipAddress"]
    assert _counts(api, t)[0] == 1
    expect_error(api.endpoint(f"{t}-c", t, "net", containerID="other"), 409, "already exists")


def test_delete_is_idempotent_and_releases(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    ip = api.ok(api.endpoint(f"{t}-c", t, "net"))["ipAddress"]
    assert api.ok(api.http.delete(f"/api/v1/endpoints/{t}-c/")) == {"endpointID": f"{t}-c", "deleted": True}
    assert api.ok(api.http.delete(f"/api/v1/endpoints/{t}-c/")) == {"endpointID": f"{t}-c", "deleted": False}
    assert _counts(api, t) == (0, "")
    assert api.ok(api.endpoint(f"{t}-d", t, "net"))["ipAddress"] == ip


def test_requested_address(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.21.0.0/24", gateway="10.21.0.254")
    assert api.ok(api.endpoint(f"{t}-a", t, "net", ipAddress="10.21.0.50"))["ipAddress"] == "10.21.0.50"
    before = _counts(api, t)
    expect_error(api.endpoint(f"{t}-b", t, "net", ipAddress="10.21.0.50"), 409, "10.21.0.50 is already in use")
    expect_error(api.endpoint(f"{t}-b", t, "net", ipAddress="10.21.0.254"), 409, "already in use")
    expect_error(api.endpoint(f"{t}-b", t, "net", ipAddress="10.22.0.5"), 409, "not in subnet 10.21.0.0/24")
    expect_error(api.endpoint(f"{t}-b", t, "net", ipAddress="10.21.0.255"), 409, "not in subnet")
    expect_error(api.endpoint(f"{t}-b", t, "net", ipAddress="bogus"), 400, "invalid IPv4 address")
    assert _counts(api, t) == before
    expect_error(api.http.get(f"/api/v1/endpoints/{t}-b/"), 404, "not found")


def test_exhaustion_is_409_and_changes_nothing(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.23.0.0/29", gateway="10.23.0.1")  # hosts .1-.6, gateway takes .1
    ips = [api.ok(api.endpoint(f"{t}-{i}", t, "net"))["ipAddress"] for i in range(5)]
    assert ips == [f"10.23.0.{i}" for i in range(2, 7)]
    before = _counts(api, t)
    expect_error(
        api.endpoint(f"{t}-x", t, "net"), 409, "auto allocation failed - address exhaustion in subnet 10.23.0.0/29"
    )
    assert _counts(api, t) == before
    expect_error(api.http.get(f"/api/v1/endpoints/{t}-x/"), 404, "not found")


def test_bad_requests_change_nothing(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.network(t, "other", "10.99.0.0/24")
    api.group(t, "other", "g2")
    before = _counts(api, t)
    cases = [
        ({"networkName": "net"}, 400, "endpointID is required"),
        ({"endpointID": "x", "networkName": "ghost", "tenantName": t}, 404, "Network"),
        ({"endpointID": "x", "networkName": "net", "tenantName": t, "groupName": "ghost"}, 404, "EndpointGroup"),
        (
            {"endpointID": "x", "networkName": "net", "tenantName": t, "groupName": "g2"},
            400,
            "belongs to network other",
        ),
        ({"endpointID": "x", "networkName": "net", "tenantName": t, "labels": {"a": 1}}, 400, "labels"),
        ({"endpointID": "x y", "networkName": "net", "tenantName": t}, 400, "endpointID string invalid format"),
        ({"endpointID": "x", "networkName": "net", "tenantName": t, "extra": 1}, 400, "unknown field"),
        ({"endpointID": 5, "networkName": "net"}, 400, "endpointID must be a string"),
    ]
    for body, status, fragment in cases:
        expect_error(api.http.post("/api/v1/endpoints/", json=body), status, fragment)
    assert _counts(api, t) == before


def test_inspect_like_contiv(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.group(t, "net", "web")
    api.ok(
        api.endpoint(
            f"{t}-abcdef",
            t,
            "net",
            groupName="web",
            containerID="abcdef123",
            containerName="nginx-1",
            host="node1",
            intfName="eth0",
        )
    )
    oper = api.inspect("endpoints", "nginx-1")["Oper"]
    assert oper["endpointID"] == f"{t}-abcdef"
    assert oper["network"] == f"net.{t}"
    assert oper["endpointGroupKey"] == f"web:{t}"
    assert oper["homingHost"] == "node1"
    assert oper["ipAddress"][0] == "10.1.1.1"
    expect_error(api.http.get("/api/v1/inspect/endpoints/zzz-none/"), 404, "not found")


def test_aci_mode_rules(fresh_api: Api) -> None:
    api = fresh_api
    g = api.ok(api.get("globals", "global"))
    api.ok(api.post("globals", "global", {k: v for k, v in g.items() if k != "key"} | {"networkInfraType": "aci"}))
    # Contiv's ACI mode accepts VXLAN networks (its objapi test creates one); EPGs get their own VLAN.
    api.ok(api.post("networks", "default:x", encap="vxlan", subnet="10.1.0.0/24"))
    api.network("default", "net", "10.1.1.0/24", encap="vlan", pktTag=100)
    api.group("default", "net", "a")
    api.group("default", "net", "b")
    vlans = {api.inspect("endpointGroups", f"default:{x}")["Oper"]["pktTag"] for x in "ab"}
    assert len(vlans) == 2
    assert 100 not in vlans
    api.ok(api.post("policys", "default:p"))
    expect_error(
        api.post("rules", "default:p:1", direction="in", action="allow", fromIpAddress="10.1.1.1"),
        400,
        "only From/ToEndpointGroup may be specified in ACI mode",
    )
    api.ok(
        api.post("rules", "default:p:1", direction="in", action="allow", fromEndpointGroup="a", protocol="tcp", port=80)
    )
    expect_error(api.post("Bgps", "h1", routerip="10.0.0.1/24"), 400, "not supported in ACI fabric mode")
    # Deleting the group returns its VLAN to the pool.
    api.ok(api.delete("endpointGroups", "default:b"))
    used = api.inspect("globals", "global")["Oper"]["vlansInUse"]
    assert len(used.split(", ")) == 2, used


def test_macs_are_unique_across_tenants_with_the_same_addresses(api: Api) -> None:
    """Overlapping subnets: the first holder of an address gets Contiv's 02:02:<ip>, the others the next
    free prefix; a released MAC is free again; every endpoint's MAC differs, concurrently too."""
    import concurrent.futures

    from contiv_api.mac import candidates

    tenants = [api.tenant() for _ in range(6)]
    for t in tenants:
        api.network(t, "net", "10.23.0.0/24")
    first, second = (api.ok(api.endpoint(f"{t}-a", t, "net", ipAddress="10.23.0.7")) for t in tenants[:2])
    expected = list(candidates("10.23.0.7"))
    assert (first["macAddress"], second["macAddress"]) == (expected[0], expected[1])
    assert first["macAddress"].startswith("02:02:")
    assert second["macAddress"] != first["macAddress"]
    assert api.ok(api.http.delete(f"/api/v1/endpoints/{tenants[0]}-a/"))["deleted"]
    third = api.ok(api.endpoint(f"{tenants[2]}-a", tenants[2], "net", ipAddress="10.23.0.7"))
    assert third["macAddress"] == expected[0], "the released MAC is free again"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four tenants race for the same address
        racing = list(pool.map(lambda t: api.endpoint(f"{t}-b", t, "net", ipAddress="10.23.0.9"), tenants[2:]))
    macs = [api.ok(r)["macAddress"] for r in racing]
    assert sorted(macs) == sorted(list(candidates("10.23.0.9"))[:4])
    listed = [e["macAddress"] for e in api.ok(api.http.get("/api/v1/endpoints/")) if e["tenantName"] in tenants]
    assert len(listed) == len(set(listed)) == 6


async def test_the_mac_index_is_rebuilt_for_endpoints_from_before_it() -> None:
    """Endpoints created before the MAC index (an upgrade, an old backup) are indexed at start-up, so a
    new endpoint with the same address does not get their MAC."""
    from netmaster.objects.endpoints import EndpointService
    from netmaster.objects.service import ObjectService
    from netmaster.store import keys, open_store
    from netmaster.store.base import Delete

    store = open_store("memory://")
    objects = ObjectService(store)
    await objects.ensure_defaults()
    for t in ("old", "new"):
        await objects.apply("tenant", t, {"tenantName": t})
        await objects.apply("network", f"{t}:net", {"tenantName": t, "networkName": "net", "encap": "vxlan",
                                                     "subnet": "10.24.0.0/24"})
    service = EndpointService(store)
    old, _ = await service.create({"endpointID": "old-a", "tenantName": "old", "networkName": "net"})
    await store.txn([], [Delete(keys.mac(old["macAddress"]))])  # as before the index existed
    assert await service.index_macs() == 1
    assert await service.index_macs() == 0
    new, _ = await service.create({"endpointID": "new-a", "tenantName": "new", "networkName": "net",
                                   "ipAddress": old["ipAddress"]})
    assert new["macAddress"] != old["macAddress"]


def test_labels_route_sets_user_labels_for_the_owning_host(api: Api) -> None:
    """``PUT /api/v1/endpoints/{id}/labels`` (the Docker agent's container labels): the endpoint's host
    replaces its user labels, services see them (inspect lists it as a provider), and the reserved
    ``io.contiv.*`` labels stay as they were."""
    t = api.tenant()
    api.network(t)
    api.ok(api.post("serviceLBs", f"{t}:svc", tenantName=t, serviceName="svc", networkName="net",
                    selectors=["app=web"], ports=["80:8080:TCP"]))
    api.ok(api.endpoint(f"{t}-c", t, "net", host="h1", labels={"io.contiv.note": "kept", "old": "x"}))
    out = api.ok(api.http.put(f"/api/v1/endpoints/{t}-c/labels", json={"host": "h1", "labels": {"app": "web"}}))
    assert out["labels"] == {"app": "web", "io.contiv.note": "kept"}
    assert api.ok(api.http.get(f"/api/v1/endpoints/{t}-c/"))["labels"] == {"app": "web", "io.contiv.note": "kept"}
    providers = api.inspect("serviceLBs", f"{t}:svc")["Oper"]["providers"]
    assert [p["endpointID"] for p in providers] == [f"{t}-c"]
    api.ok(api.http.put(f"/api/v1/endpoints/{t}-c/labels/", json={"host": "h1", "labels": {}}))
    assert api.inspect("serviceLBs", f"{t}:svc")["Oper"]["providers"] == []


def test_labels_route_refusals_change_nothing(api: Api) -> None:
    t = api.tenant()
    api.network(t)
    api.ok(api.endpoint(f"{t}-c", t, "net", host="h1", labels={"app": "web"}))
    before = api.ok(api.http.get(f"/api/v1/endpoints/{t}-c/"))
    url = f"/api/v1/endpoints/{t}-c/labels"
    cases = [
        (f"/api/v1/endpoints/{t}-nope/labels", {"host": "h1", "labels": {"app": "db"}}, 404, "not found"),
        (url, {"host": "h2", "labels": {"app": "db"}}, 409, "belongs to host 'h1'"),  # another host's agent
        (url, {"labels": {"app": "db"}}, 400, "host is required"),
        (url, {"host": "h1", "labels": {"io.contiv.tenant": "other"}}, 400, "not under io.contiv."),
        (url, {"host": "h1", "labels": {"bad key": "v"}}, 400, "must be a name"),
        (url, {"host": "h1", "labels": {"app": 5}}, 400, "must be a string"),
        (url, {"host": "h1", "labels": {"app": "v" * 257}}, 400, "up to 256"),
        (url, {"host": "h1", "labels": ["app=db"]}, 400, "labels must be an object"),
        (url, {"host": "h1", "labels": {}, "tenantName": "x"}, 400, "unknown field"),
        (url, ["h1"], 400, "JSON object"),
    ]
    for path, body, status, message in cases:
        expect_error(api.http.put(path, json=body), status, message)
    assert api.ok(api.http.get(f"/api/v1/endpoints/{t}-c/")) == before
    expect_error(api.http.get(f"/api/v1/endpoints/{t}-nope/"), 404, "not found")
