"""Address reservations: Docker's IPAM reserves before the endpoint exists, the endpoint claims the
address atomically, releases are idempotent, and unclaimed reservations expire."""

from __future__ import annotations

import asyncio

from netmaster.objects.endpoints import ReservationService
from testbed.rest import Api, expect_error

R = "/api/v1/addressReservations/"


def _counts(api: Api, t: str) -> tuple[int, str]:
    oper = api.inspect("networks", f"{t}:net")["Oper"]
    return oper["numEndpoints"], oper["allocatedIPAddresses"]


def test_reserve_claim_release(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.30.0.0/24", gateway="10.30.0.254")
    before = _counts(api, t)
    resv = api.ok(api.http.post(R, json={"tenantName": t, "networkName": "net", "owner": "h1"}))
    assert (resv["reservationID"], resv["ipAddress"], resv["subnetLen"], resv["gateway"]) == (
        f"{t}:net:10.30.0.1", "10.30.0.1", 24, "10.30.0.254")
    assert _counts(api, t)[0] == 1
    # the reserved address is taken for everybody else
    assert api.ok(api.endpoint(f"{t}-other", t, "net"))["ipAddress"] == "10.30.0.2"
    expect_error(api.endpoint(f"{t}-x", t, "net", ipAddress="10.30.0.1"), 409, "already in use")
    # the endpoint naming the reservation takes it over: same address, counted once
    ep = api.ok(api.endpoint(f"{t}-c", t, "net", ipAddress="10.30.0.1",
                             labels={"io.contiv.reservation": resv["reservationID"]}))
    assert ep["ipAddress"] == "10.30.0.1"
    assert _counts(api, t)[0] == 2
    assert api.ok(api.http.get(R)) == [r for r in api.ok(api.http.get(R)) if r["tenantName"] != t]
    # Docker's ReleaseAddress after the endpoint claimed it: nothing to release, nothing released
    assert api.ok(api.http.delete(R + resv["reservationID"] + "/")) == {
        "reservationID": resv["reservationID"], "deleted": False}
    assert api.ok(api.http.get(f"/api/v1/endpoints/{t}-c/"))["ipAddress"] == "10.30.0.1"
    api.ok(api.http.delete(f"/api/v1/endpoints/{t}-c/"))
    api.ok(api.http.delete(f"/api/v1/endpoints/{t}-other/"))
    assert _counts(api, t) == before


def test_release_is_idempotent_and_frees(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.31.0.0/24")
    resv = api.ok(api.http.post(R, json={"tenantName": t, "networkName": "net", "ipAddress": "10.31.0.40"}))
    expect_error(api.http.post(R, json={"tenantName": t, "networkName": "net", "ipAddress": "10.31.0.40"}), 409,
                 "already in use")  # two containers asking for one address must not both get it
    expect_error(api.delete("networks", f"{t}:net"), 409, "active endpoints")
    for deleted in (True, False):
        assert api.ok(api.http.delete(R + resv["reservationID"] + "/"))["deleted"] is deleted
    assert _counts(api, t) == (0, "")


def test_refusals_change_nothing(api: Api) -> None:
    t = api.tenant()
    api.network(t, "net", "10.32.0.0/24")
    api.group(t, "net", "pooled", ipPool="10.32.0.100-10.32.0.110")
    before = _counts(api, t)
    expect_error(api.http.post(R, json={"tenantName": t, "networkName": "nope"}), 404, "not found")
    expect_error(api.http.post(R, json={"tenantName": t}), 400, "networkName")
    expect_error(api.http.post(R, json={"tenantName": t, "networkName": "net", "x": "1"}), 400, "")
    expect_error(api.http.post(R, json={"tenantName": t, "networkName": "net", "ipAddress": "10.9.9.9"}), 409,
                 "not in subnet")
    expect_error(api.endpoint(f"{t}-c", t, "net", labels={"io.contiv.reservation": f"{t}:net:10.32.0.7"}), 409,
                 "does not exist")
    resv = api.ok(api.http.post(R, json={"tenantName": t, "networkName": "net"}))
    expect_error(api.endpoint(f"{t}-c", t, "net", groupName="pooled",
                              labels={"io.contiv.reservation": resv["reservationID"]}), 409, "own ipPool")
    expect_error(api.endpoint(f"{t}-c", t, "net", ipAddress="10.32.0.9",
                              labels={"io.contiv.reservation": resv["reservationID"]}), 409, "another network or")
    api.ok(api.http.delete(R + resv["reservationID"]))
    assert _counts(api, t) == before


def test_unclaimed_reservations_expire() -> None:
    """A runtime that crashed between reserving and creating its endpoint leaks nothing for long:
    the next reservation in the network sweeps expired ones (in-process, to control the TTL)."""
    import httpx

    from netmaster.api.app import create_app
    from netmaster.store.memory import MemoryStore

    async def scenario() -> None:
        store = MemoryStore()
        app = create_app(store)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://nm"
        ) as http:
            assert (await http.post("/api/v1/tenants/t/", json={"tenantName": "t"})).status_code == 200
            r = await http.post("/api/v1/networks/t:net/", json={"tenantName": "t", "networkName": "net",
                                                                 "encap": "vxlan", "subnet": "10.33.0.0/24"})
            assert r.status_code == 200, r.text
            resv = ReservationService(store, ttl=0.05)
            first, _ = await resv.create({"tenantName": "t", "networkName": "net"})
            await asyncio.sleep(0.1)
            second, _ = await resv.create({"tenantName": "t", "networkName": "net"})
            assert second["ipAddress"] == first["ipAddress"]  # swept, then reused
            items, _ = await resv.list()
            assert [r["reservationID"] for r in items] == [second["reservationID"]]
            oper = (await http.get("/api/v1/inspect/networks/t:net/")).json()["Oper"]
            assert oper["numEndpoints"] == 1

    asyncio.run(scenario())
