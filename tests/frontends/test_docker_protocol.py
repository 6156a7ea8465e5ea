"""Docker remote driver protocol: every NetworkDriver and IpamDriver call over the plugin socket,
with exact reply shapes, against a real netmaster (IPAM reservations) and an in-memory EndpointOps."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.docker.container_labels import ContainerLabelFollower, container_labels, endpoint_labels
from agent.docker.records import DockerEndpoint, DriverRecords
from agent.docker.server import CONTENT_TYPE, serve
from agent.metrics import AgentMetrics
from contiv_api.mac import candidates
from contiv_api.netmaster_client import NetmasterError
from contiv_api.service_lb import MAX_LABELS
from testbed.netmaster import NetmasterProcess
from tests.frontends.fake_ops import FakeEndpointOps

T, SUBNET, GW = "dk", "10.70.0.0/24", "10.70.0.254"
NET_ID, EP_ID = "n" + "1" * 63, "e" + "2" * 63
GENERIC = {"com.docker.network.generic": {"tenant": T, "network": "net", "group": "web"}}


class _Conn(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


@pytest.fixture(scope="module")
def netmaster() -> Iterator[httpx.Client]:
    with NetmasterProcess.start("memory://") as nm:
        http_ = httpx.Client(base_url=nm.url, timeout=10)
        for path, body in ((f"tenants/{T}", {"tenantName": T}),
                           (f"networks/{T}:net", {"tenantName": T, "networkName": "net", "encap": "vxlan",
                                                  "subnet": SUBNET, "gateway": GW}),
                           (f"endpointGroups/{T}:web", {"tenantName": T, "groupName": "web", "networkName": "net"})):
            assert http_.post(f"/api/v1/{path}/", json=body).status_code == 200
        yield http_


@pytest.fixture
def plugin(tmp_path: Path, netmaster: httpx.Client) -> Iterator[tuple[Any, FakeEndpointOps, httpx.Client]]:
    ops = FakeEndpointOps({f"{T}:net": SUBNET}, gateway_octet=254)

    def call(method: str, path: str, body: Any) -> Any:
        resp = netmaster.request(method, path, json=body)
        if resp.status_code >= 400:
            raise NetmasterError(resp.status_code, resp.json().get("error", ""))
        return resp.json()

    server = serve(ops, str(tmp_path / "contiv.sock"), tmp_path / "state", call, owner="h1")

    def post(route: str, body: Any = None, raw: bytes | None = None, method: str = "POST") -> tuple[int, Any]:
        conn = _Conn(str(tmp_path / "contiv.sock"))
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        conn.request(method, route, body=data, headers={"Accept": CONTENT_TYPE})
        resp = conn.getresponse()
        assert resp.getheader("Content-Type") == CONTENT_TYPE
        out = json.loads(resp.read())
        conn.close()
        return resp.status, out

    yield post, ops, netmaster
    server.stop()
    for r in netmaster.get("/api/v1/addressReservations/").json():
        netmaster.delete(f"/api/v1/addressReservations/{r['reservationID']}/")


def reservations(nm: httpx.Client) -> list[str]:
    return sorted(r["ipAddress"] for r in nm.get("/api/v1/addressReservations/").json())


def ok(reply: tuple[int, Any]) -> Any:
    assert reply[0] == 200, reply
    return reply[1]


def test_handshake_and_capabilities(plugin) -> None:
    post, _, _ = plugin
    assert ok(post("/Plugin.Activate")) == {"Implements": ["NetworkDriver", "IpamDriver"]}
    assert ok(post("/NetworkDriver.GetCapabilities", {})) == {"Scope": "global", "ConnectivityScope": "global"}
    assert ok(post("/IpamDriver.GetCapabilities", {})) == {"RequiresMACAddress": False,
                                                           "RequiresRequestReplay": False}
    assert ok(post("/IpamDriver.GetDefaultAddressSpaces", {})) == {"LocalDefaultAddressSpace": "contiv-local",
                                                                   "GlobalDefaultAddressSpace": "contiv-global"}
    assert ok(post("/NetworkDriver.DiscoverNew", {"DiscoveryType": 1, "DiscoveryData": {"Address": "1.2.3.4",
                                                                                        "self": False}})) == {}
    assert ok(post("/NetworkDriver.DiscoverDelete", {"DiscoveryType": 1, "DiscoveryData": {}})) == {}
    assert ok(post("/NetworkDriver.AllocateNetwork", {"NetworkID": NET_ID})) == {"Options": {}}
    assert ok(post("/NetworkDriver.FreeNetwork", {"NetworkID": NET_ID})) == {}


@pytest.mark.parametrize("pool_request", [{"Pool": SUBNET}, {"Options": {"tenant": T, "network": "net"}}])
def test_full_container_lifecycle(plugin, pool_request: dict) -> None:
    """The calls in Docker's order for network create, run, rm, network rm."""
    post, ops, nm = plugin
    pool = ok(post("/IpamDriver.RequestPool", {"AddressSpace": "contiv-local", "SubPool": "", "V6": False,
                                               **pool_request}))
    assert pool == {"PoolID": f"{T}:net", "Pool": SUBNET, "Data": {"com.docker.network.gateway": f"{GW}/24"}}
    gw = ok(post("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net", "Address": GW,
                                                "Options": {"RequestAddressType": "com.docker.network.gateway"}}))
    assert gw == {"Address": f"{GW}/24", "Data": {}}
    assert ok(post("/NetworkDriver.CreateNetwork", {
        "NetworkID": NET_ID, "Options": GENERIC,
        "IPv4Data": [{"AddressSpace": "contiv-local", "Pool": SUBNET, "Gateway": f"{GW}/24", "AuxAddresses": {}}],
        "IPv6Data": []})) == {}

    addr = ok(post("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net", "Address": "", "Options": {}}))
    assert addr == {"Address": "10.70.0.1/24", "Data": {}}
    assert reservations(nm) == ["10.70.0.1"]
    created = ok(post("/NetworkDriver.CreateEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID, "Options": {},
                                                        "Interface": {"Address": "10.70.0.1/24", "AddressIPv6": "",
                                                                      "MacAddress": ""}}))
    mac = ops.endpoints[EP_ID][1].mac  # as the endpoint path assigned it
    assert created == {"Interface": {"MacAddress": mac}}
    (_, req), = ops.mutations()
    assert (req.endpoint_id, req.tenant, req.network, req.group, req.netns, req.requested_ip) == (
        EP_ID, T, "net", "web", None, "10.70.0.1")
    assert req.labels == {"io.contiv.reservation": f"{T}:net:10.70.0.1"}
    assert ok(post("/NetworkDriver.EndpointOperInfo", {"NetworkID": NET_ID, "EndpointID": EP_ID})) == {
        "Value": {"ipAddress": "10.70.0.1/24", "macAddress": mac, "gateway": GW,
                  "hostInterface": "ve" + EP_ID[:11], "mtu": 1450}}
    assert ok(post("/NetworkDriver.Join", {"NetworkID": NET_ID, "EndpointID": EP_ID,
                                           "SandboxKey": "/var/run/docker/netns/abc", "Options": {}})) == {
        "InterfaceName": {"SrcName": "eth0", "DstPrefix": "eth"}, "Gateway": GW, "GatewayIPv6": "",
        "StaticRoutes": [], "DisableGatewayService": False}
    assert ok(post("/NetworkDriver.ProgramExternalConnectivity", {"NetworkID": NET_ID, "EndpointID": EP_ID,
                                                                  "Options": {}})) == {}
    assert ok(post("/NetworkDriver.RevokeExternalConnectivity", {"NetworkID": NET_ID, "EndpointID": EP_ID})) == {}
    assert ok(post("/NetworkDriver.Leave", {"NetworkID": NET_ID, "EndpointID": EP_ID})) == {}
    for _ in range(2):  # idempotent
        assert ok(post("/NetworkDriver.DeleteEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID})) == {}
        assert ok(post("/IpamDriver.ReleaseAddress", {"PoolID": f"{T}:net", "Address": "10.70.0.1/24"})) == {}
    assert ops.endpoints == {}
    assert ok(post("/IpamDriver.ReleaseAddress", {"PoolID": f"{T}:net", "Address": f"{GW}/24"})) == {}
    assert ok(post("/IpamDriver.ReleasePool", {"PoolID": f"{T}:net"})) == {}
    assert ok(post("/NetworkDriver.DeleteNetwork", {"NetworkID": NET_ID})) == {}
    assert reservations(nm) == []


def test_preferred_address_and_abort_before_endpoint(plugin) -> None:
    post, ops, nm = plugin
    assert ok(post("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net", "Address": "10.70.0.77"})) == {
        "Address": "10.70.0.77/24", "Data": {}}
    status, err = post("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net", "Address": "10.70.0.77"})
    assert (status, err) == (500, {"Err": "address reservation: requested address 10.70.0.77 is already in use"})
    # Docker gives up before CreateEndpoint: the release is all that is needed
    assert ok(post("/IpamDriver.ReleaseAddress", {"PoolID": f"{T}:net", "Address": "10.70.0.77/24"})) == {}
    assert reservations(nm) == []
    assert ops.calls == []


def test_endpoint_without_docker_address(plugin) -> None:
    """With another IPAM driver's address absent, the endpoint's address comes from us."""
    post, ops, _ = plugin
    ok(post("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": GENERIC, "IPv4Data": []}))
    out = ok(post("/NetworkDriver.CreateEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID, "Interface": {}}))
    assert out == {"Interface": {"MacAddress": ops.endpoints[EP_ID][1].mac, "Address": "10.70.0.1/24"}}


def test_mapping_survives_a_restart(plugin, tmp_path: Path, netmaster: httpx.Client) -> None:
    from agent.docker.records import DriverRecords

    post, _, _ = plugin
    ok(post("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": GENERIC, "IPv4Data": []}))
    records = DriverRecords(tmp_path / "state" / "driver.json")
    assert (records.networks[NET_ID].tenant, records.networks[NET_ID].group) == (T, "web")


BAD = [
    ("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": {}}, "network (-o network=N) None is not a "
                                                                           "valid name"),
    ("/NetworkDriver.CreateNetwork", {"NetworkID": "", "Options": GENERIC}, "NetworkID is required"),
    ("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": {"com.docker.network.generic": {
        "tenant": T, "network": "nope"}}}, f"network {T}:nope not found in netmaster"),
    ("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": {"com.docker.network.generic": {
        "tenant": T, "network": "net", "group": "ghost"}}}, f"endpointGroup {T}:ghost not found in netmaster"),
    ("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": GENERIC, "IPv4Data": [{"Pool": "10.1.0.0/24"}]},
     f"subnet 10.1.0.0/24 is not the subnet of Contiv network {T}:net ({SUBNET})"),
    ("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": GENERIC, "IPv6Data": [{"Pool": "fd00::/64"}]},
     "contiv: IPv6 is not supported"),
    ("/NetworkDriver.CreateEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID},
     f"network {NET_ID} is not a contiv network known to this host"),
    ("/NetworkDriver.Join", {"NetworkID": NET_ID, "EndpointID": EP_ID, "SandboxKey": "/x"},
     f"network {NET_ID} is not a contiv network known to this host"),
    ("/NetworkDriver.EndpointOperInfo", {"NetworkID": NET_ID, "EndpointID": "bad id"},
     f"network {NET_ID} is not a contiv network known to this host"),
    ("/IpamDriver.RequestPool", {"Pool": "", "SubPool": "10.70.0.0/25"},
     "contiv IPAM: --ip-range is not supported (the Contiv network's pool is used)"),
    ("/IpamDriver.RequestPool", {"V6": True}, "contiv IPAM: IPv6 pools are not supported"),
    ("/IpamDriver.RequestPool", {}, "contiv IPAM needs the Contiv network: --ipam-opt tenant=T --ipam-opt "
                                    "network=N, or --subnet equal to its subnet"),
    ("/IpamDriver.RequestPool", {"Pool": "10.99.0.0/24"}, "no Contiv network has subnet 10.99.0.0/24: name it "
                                                          "with --ipam-opt tenant=T --ipam-opt network=N"),
    ("/IpamDriver.RequestPool", {"Pool": "bogus"}, "Pool 'bogus' is not an address"),
    ("/IpamDriver.RequestAddress", {"PoolID": "nocolon"}, "unknown PoolID 'nocolon'"),
    ("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net", "Address": "10.99.0.5"},
     "address reservation: requested address 10.99.0.5 is not in subnet 10.70.0.0/24"),
    ("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net", "Address": "10.70.0.9",
                                    "Options": {"RequestAddressType": "com.docker.network.gateway"}},
     f"gateway 10.70.0.9 differs from Contiv network {T}:net's {GW}"),
    ("/IpamDriver.ReleaseAddress", {"PoolID": f"{T}:net", "Address": "x"}, "Address 'x' is not an address"),
    ("/IpamDriver.ReleasePool", {"PoolID": 5}, "PoolID must be a string"),
]


@pytest.mark.parametrize(("route", "body", "err"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_requests_are_refused_without_side_effects(plugin, route: str, body: dict, err: str) -> None:
    post, ops, nm = plugin
    assert post(route, body) == (500, {"Err": err})
    assert ops.calls == []
    assert reservations(nm) == []


def test_transport_errors(plugin) -> None:
    post, ops, _ = plugin
    assert post("/NetworkDriver.Frobnicate", {}) == (404, {"Err": "/NetworkDriver.Frobnicate is not implemented"})
    status, body = post("/NetworkDriver.CreateNetwork", raw=b"{nope")
    assert status == 400
    assert body["Err"].startswith("bad request: ")
    assert post("/NetworkDriver.CreateNetwork", raw=b"[1]") == (400, {
        "Err": "bad request: request body must be a JSON object"})
    assert post("/Plugin.Activate", method="GET") == (405, {"Err": "only POST is supported"})
    assert ops.calls == []


def test_endpoint_errors_are_reported_and_roll_back(plugin) -> None:
    from tests.frontends.fake_ops import EndpointError

    post, ops, nm = plugin
    ok(post("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": GENERIC, "IPv4Data": []}))
    ok(post("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net"}))
    ops.fail_with = EndpointError("unavailable", "netmaster unavailable: down")
    assert post("/NetworkDriver.CreateEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID, "Interface": {
        "Address": "10.70.0.1/24"}}) == (500, {"Err": "create endpoint: netmaster unavailable: down"})
    ops.fail_with = None
    ok(post("/IpamDriver.ReleaseAddress", {"PoolID": f"{T}:net", "Address": "10.70.0.1/24"}))
    assert reservations(nm) == []
    status, body = post("/NetworkDriver.CreateEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID, "Interface": {
        "Address": "10.70.0.2/24", "MacAddress": "02:aa:00:00:00:01"}})
    assert (status, body) == (500, {"Err": "MAC address 02:aa:00:00:00:01 cannot be used: contiv endpoints use "
                                           f"{next(candidates('10.70.0.2'))}"})
    assert ops.endpoints == {}


def test_endpoint_label_options_become_labels(plugin) -> None:
    """``docker run --network name=N,driver-opt=label.app=web``: the endpoint's labels (what services
    select by), next to the reservation claim; a label in the agent's own namespace (which could claim
    someone else's reserved address) or a bad key is refused before anything is created."""
    post, ops, nm = plugin
    ok(post("/NetworkDriver.CreateNetwork", {"NetworkID": NET_ID, "Options": GENERIC, "IPv4Data": []}))
    for options, err in (({"label.io.contiv.reservation": f"{T}:net:10.70.0.9"}, "label.io.contiv.reservation"),
                         ({"label.bad key": "x"}, "label.bad key"), ({"label.app": 5}, "label.app")):
        status, body = post("/NetworkDriver.CreateEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID,
                                                              "Options": options, "Interface": {}})
        assert status == 500, body
        assert err in body["Err"]
        assert ops.calls == []
    addr = ok(post("/IpamDriver.RequestAddress", {"PoolID": f"{T}:net", "Address": "", "Options": {}}))["Address"]
    ok(post("/NetworkDriver.CreateEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID, "Interface": {"Address": addr},
                                              "Options": {"label.app": "web", "label.tier": "front",
                                                          "com.docker.network.endpoint.exposedports": []}}))
    (_, req), = ops.mutations()
    assert req.labels == {"app": "web", "tier": "front", "io.contiv.reservation": f"{T}:net:{addr.split('/')[0]}"}
    ok(post("/NetworkDriver.DeleteEndpoint", {"NetworkID": NET_ID, "EndpointID": EP_ID}))
    ok(post("/IpamDriver.ReleaseAddress", {"PoolID": f"{T}:net", "Address": addr}))
    assert reservations(nm) == []


def test_container_labels_filter_and_merge() -> None:
    """A container's labels become its endpoints' labels without the system's ``io.contiv.*`` keys or
    malformed ones; the endpoint's driver-option labels win over the container's."""
    labels = {"app": "web", "tier": "front", "io.contiv.tenant": "other", "io.contiv.reservation": "dk:net:1.2.3.4",
              "bad key": "x", "long": "v" * 257, "com.example/owner": "ops"}
    assert container_labels(labels) == {"app": "web", "tier": "front", "com.example/owner": "ops"}
    assert container_labels(None) == {}
    assert endpoint_labels(labels, {"app": "batch"}) == {"app": "batch", "tier": "front", "com.example/owner": "ops"}
    many = {f"k{i:03}": "v" for i in range(MAX_LABELS + 10)}
    assert len(container_labels(many)) == MAX_LABELS


class _FakeDockerd:
    """dockerd's inspect documents, list and event stream, for the follower's edge cases; the stream
    drops after its events (a dockerd restart) until ``stop`` is set."""

    socket = "fake"

    def __init__(self, containers: dict[str, dict[str, Any]], follower_stop: list[Any]) -> None:
        self.containers, self.events_given, self.stop = containers, [["c2"], []], follower_stop

    def running(self) -> list[str]:
        return list(self.containers)

    def inspect(self, cid: str) -> dict[str, Any] | None:
        return self.containers.get(cid)

    @contextmanager
    def events(self) -> Iterator[Iterator[str]]:
        if not self.events_given:
            self.stop[0].stop()
            raise httpx.ConnectError("dockerd gone")
        yield iter(self.events_given.pop(0))


def test_container_label_follower_sets_labels_of_its_endpoints_only(netmaster: httpx.Client, tmp_path: Path) -> None:
    """The follower catches up on running containers, then follows events across a dropped stream;
    it labels only endpoints its driver created, keeps the endpoint's reservation claim, skips a
    container whose endpoint netmaster refuses (another host's), and writes unchanged labels once."""
    calls: list[tuple[str, str, Any]] = []

    def call(method: str, path: str, body: Any) -> Any:
        calls.append((method, path, body))
        resp = netmaster.request(method, path, json=body)
        if resp.status_code >= 400:
            raise NetmasterError(resp.status_code, resp.json().get("error", ""))
        return resp.json()

    for ep_id, host in (("fl-1", "h1"), ("fl-2", "h1"), ("fl-3", "h2")):
        assert netmaster.post("/api/v1/endpoints/", json={"endpointID": ep_id, "tenantName": T, "networkName": "net",
                                                          "host": host, "labels": {"io.contiv.x": "y"}}).is_success
    records = DriverRecords(tmp_path / "driver.json")
    for ep_id, opts in (("fl-1", {}), ("fl-2", {"app": "batch"}), ("fl-3", {})):
        records.put_endpoint(DockerEndpoint(ep_id, NET_ID, "", 24, "", "", "", "", 1450, labels=opts))

    def doc(labels: dict[str, str], *eps: str) -> dict[str, Any]:
        return {"Name": "/c", "Config": {"Labels": labels},
                "NetworkSettings": {"Networks": {f"n{i}": {"EndpointID": e} for i, e in enumerate(eps)}}}

    containers = {"c1": doc({"app": "web", "io.contiv.tenant": "t2"}, "fl-1", "other-driver"),
                  "c2": doc({"app": "web"}, "fl-2"), "c3": doc({"app": "web"}, "fl-3")}
    stop: list[Any] = []
    fake = _FakeDockerd(containers, stop)
    metrics = AgentMetrics()
    follower = ContainerLabelFollower(fake, records, call, "h1", metrics)  # type: ignore[arg-type]
    stop.append(follower)
    follower.run()  # returns once the fake dockerd stopped it
    labels = {e: netmaster.get(f"/api/v1/endpoints/{e}/").json()["labels"] for e in ("fl-1", "fl-2", "fl-3")}
    assert labels == {"fl-1": {"app": "web", "io.contiv.x": "y"}, "fl-2": {"app": "batch", "io.contiv.x": "y"},
                      "fl-3": {"io.contiv.x": "y"}}
    puts = [path for _, path, _ in calls]
    assert puts.count("/api/v1/endpoints/fl-1/labels") == 1, puts  # the second catch-up changed nothing
    assert "/api/v1/endpoints/other-driver/labels" not in puts
    assert metrics.docker_label_updates.labels("set")._value.get() == 2
    assert metrics.docker_label_updates.labels("refused")._value.get() == 2  # fl-3, at each catch-up
    assert metrics.docker_events_following._value.get() == 0  # the stream is gone
    for ep_id in ("fl-1", "fl-2", "fl-3"):
        netmaster.delete(f"/api/v1/endpoints/{ep_id}/")
