"""dockerd (one per simulated host) runs containers on Contiv networks through the remote network and
IPAM driver: they reach each other across hosts, obey an EPG policy, leave nothing behind, and a
run that Docker aborts halfway leaks no address."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from testbed.cluster import in_ns, leftovers
from testbed.cluster.prereq import requires
from testbed.fe_cluster import FeCluster, busybox_rootfs, missing
from testbed.sync_cluster import Netmaster, wait_revision
from testbed.waiting import eventually
from tests.frontends.docker_runtime import Dockerd

pytestmark = [pytest.mark.slow, requires(missing("dockerd", "docker", "unshare"))]
T = "fedock"
SUBNET = "10.65.0.0/24"
IMAGE = "local/busybox:1"


@dataclass
class Env:
    cluster: FeCluster
    nm: Netmaster
    docker: list[Dockerd]


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    cluster = FeCluster(docker=True)
    daemons: list[Dockerd] = []
    try:
        cluster.up()
        nm = Netmaster(cluster.netmaster_url)
        nm.tenant_with_network(T, "vxlan", SUBNET, gateway="10.65.0.254")
        nm.post("policys", f"{T}:no-ping", tenantName=T, policyName="no-ping")
        nm.post("rules", f"{T}:no-ping:1", tenantName=T, policyName="no-ping", ruleId="1", direction="in",
                action="deny", protocol="icmp")
        nm.post("endpointGroups", f"{T}:web", tenantName=T, groupName="web", networkName="net")
        wait_revision(cluster, nm.post("endpointGroups", f"{T}:db", tenantName=T, groupName="db", networkName="net",
                                       policies=["no-ping"]))
        rootfs = busybox_rootfs(cluster.root / "rootfs")
        for host in cluster.hosts:
            d = Dockerd(cluster.root / host.name / "docker", host.netns, cluster.docker_plugin_dir(host),
                        cluster.docker_socket(host))  # the agent follows its events (container labels)
            daemons.append(d)
            cluster.pids.append(d.start())
            cluster._record()
            d.import_rootfs(rootfs, IMAGE)
            # the pool by subnet for one network, by name for the other: both ways of naming it
            d("network", "create", "-d", "contiv", "--ipam-driver", "contiv", "--subnet", SUBNET,
              "-o", f"tenant={T}", "-o", "network=net", "-o", "group=web", "dk-web")
            d("network", "create", "-d", "contiv", "--ipam-driver", "contiv", "--ipam-opt", f"tenant={T}",
              "--ipam-opt", "network=net", "-o", f"tenant={T}", "-o", "network=net", "-o", "group=db", "dk-db")
        yield Env(cluster, nm, daemons)
    finally:
        for d in daemons:
            d.stop()
        cluster.down()
    assert leftovers(cluster.prefix) == []


def run(d: Dockerd, name: str, network: str, *extra: str) -> str:
    return d("run", "-d", "--name", name, "--network", network, *extra, IMAGE, "/bin/sleep", "600").stdout.strip()


def ip_of(d: Dockerd, name: str, network: str) -> str:
    return json.loads(d("inspect", name).stdout)[0]["NetworkSettings"]["Networks"][network]["IPAddress"]


def pings(d: Dockerd, name: str, ip: str, attempts: int = 1) -> bool:
    return any(d("exec", name, "ping", "-c", "1", "-W", "1", ip, check=False).returncode == 0 for _ in range(attempts))


def tenant_state(env: Env) -> tuple[list[dict], list[dict]]:
    eps = [e for e in env.nm.ok(env.nm.http.get("/api/v1/endpoints/")) if e["tenantName"] == T]
    resv = [r for r in env.nm.ok(env.nm.http.get("/api/v1/addressReservations/")) if r["tenantName"] == T]
    return eps, resv


def ports_and_veths(env: Env) -> list[tuple[int, int]]:
    out = []
    for host in env.cluster.hosts:
        ports = [p for p in host.ovs.run("ovs-vsctl", "list-ports", host.bridge).split() if p.startswith("ve")]
        links = [line.split(":")[1].strip() for line in in_ns(host.netns, "ip", "-o", "link").stdout.splitlines()]
        out.append((len(ports), len([n for n in links if n.startswith(("ve", "vc"))])))
    return out


def test_containers_on_two_hosts_ping_and_obey_policy(env: Env) -> None:
    d1, d2 = env.docker
    run(d1, "ca", "dk-web")
    run(d2, "cb", "dk-web")
    run(d2, "cc", "dk-db")
    ip_a, ip_b, ip_c = ip_of(d1, "ca", "dk-web"), ip_of(d2, "cb", "dk-web"), ip_of(d2, "cc", "dk-db")
    eps, resv = tenant_state(env)
    assert sorted(e["ipAddress"] for e in eps) == sorted([ip_a, ip_b, ip_c])
    assert {e["ipAddress"]: e["groupName"] for e in eps} == {ip_a: "web", ip_b: "web", ip_c: "db"}
    assert resv == []  # every reservation was claimed by its endpoint
    link = d1("exec", "ca", "ip", "-o", "link", "show", "eth0").stdout
    assert f"link/ether {next(e['macAddress'] for e in eps if e['ipAddress'] == ip_a)} " in link, "netmaster's MAC"
    assert "mtu 1450" in link
    assert "default via 10.65.0.254" in d1("exec", "ca", "ip", "route").stdout
    assert pings(d1, "ca", ip_b, attempts=20), "web on h1 cannot reach web on h2"
    assert pings(d2, "cb", ip_a)
    assert not pings(d1, "ca", ip_c, attempts=3), "policy no-ping on db was not enforced"
    assert pings(d2, "cc", ip_b)


def test_removed_containers_leave_nothing(env: Env) -> None:
    d1, d2 = env.docker
    before_state, before_links = tenant_state(env), ports_and_veths(env)
    run(d1, "r1", "dk-web")
    run(d2, "r2", "dk-db")
    assert len(tenant_state(env)[0]) == len(before_state[0]) + 2
    d1("rm", "-f", "r1")
    d2("rm", "-f", "r2")
    assert tenant_state(env) == before_state
    assert ports_and_veths(env) == before_links


def test_aborted_runs_leak_nothing(env: Env) -> None:
    """Docker gives up halfway in two places: CreateEndpoint fails after the address was reserved
    (the endpoint group vanished from netmaster), and the container fails to start after it joined.
    Docker rolls back; no address stays reserved or allocated, nothing stays plumbed."""
    d1, _ = env.docker
    env.nm.post("endpointGroups", f"{T}:tmp", tenantName=T, groupName="tmp", networkName="net")
    d1("network", "create", "-d", "contiv", "--ipam-driver", "contiv", "--subnet", SUBNET,
       "-o", f"tenant={T}", "-o", "network=net", "-o", "group=tmp", "dk-tmp")
    wait_revision(env.cluster, env.nm.delete("endpointGroups", f"{T}:tmp"))
    before_state, before_links = tenant_state(env), ports_and_veths(env)
    failed = d1("run", "-d", "--name", "bad1", "--network", "dk-tmp", IMAGE, "/bin/sleep", "600", check=False)
    assert failed.returncode != 0
    assert "EndpointGroup fedock:tmp not found" in failed.stderr
    failed = d1("run", "-d", "--name", "bad2", "--network", "dk-web", IMAGE, "/no/such/program", check=False)
    assert failed.returncode != 0
    for name in ("bad1", "bad2"):
        d1("rm", "-f", name, check=False)
    d1("network", "rm", "dk-tmp")
    assert tenant_state(env) == before_state
    assert ports_and_veths(env) == before_links


def test_network_mapping_survives_an_agent_restart(env: Env) -> None:
    d1, _ = env.docker
    host = env.cluster.hosts[0]
    env.cluster.kill_agent(host)
    env.cluster.start_agent(host)
    run(d1, "after", "dk-db")
    assert ip_of(d1, "after", "dk-db").startswith("10.65.0.")
    d1("rm", "-f", "after")


def test_bad_network_options_are_refused(env: Env) -> None:
    d1, _ = env.docker
    before = tenant_state(env)
    for args, msg in (
        (["-o", f"tenant={T}", "-o", "network=nope"], "fedock:nope not found in netmaster"),
        (["-o", f"tenant={T}"], "network (-o network=N)"),
        (["-o", f"tenant={T}", "-o", "network=net", "-o", "group=ghost"], "fedock:ghost not found in netmaster"),
    ):
        out = d1("network", "create", "-d", "contiv", "--ipam-driver", "contiv", "--subnet", SUBNET, *args, "dk-bad",
                 check=False)
        assert out.returncode != 0
        assert msg in out.stderr
    out = d1("network", "create", "-d", "contiv", "--ipam-driver", "contiv", "--subnet", "10.99.0.0/24", "dk-bad",
             check=False)
    assert "no Contiv network has subnet 10.99.0.0/24" in out.stderr
    assert tenant_state(env) == before


def test_endpoint_label_options_make_service_providers(env: Env) -> None:
    """``--network name=N,driver-opt=label.app=web`` gives the container's endpoint the label app=web,
    so a service selecting app=web lists it as a provider; a container without it is not one."""
    d1, _ = env.docker
    env.nm.post("serviceLBs", f"{T}:lbweb", tenantName=T, serviceName="lbweb", networkName="net",
                selectors=["app=web"], ports=["80:8080:TCP"])
    d1("run", "-d", "--name", "lb1", "--network", "name=dk-web,driver-opt=label.app=web", IMAGE, "/bin/sleep", "600")
    run(d1, "lb2", "dk-web")
    try:
        ids = {n: json.loads(d1("inspect", n).stdout)[0]["NetworkSettings"]["Networks"]["dk-web"]["EndpointID"]
               for n in ("lb1", "lb2")}
        labels = {e["endpointID"]: e.get("labels", {}) for e in tenant_state(env)[0]}
        assert labels[ids["lb1"]].get("app") == "web", labels
        assert "app" not in labels[ids["lb2"]], labels
        oper = env.nm.ok(env.nm.http.get(f"/api/v1/inspect/serviceLBs/{T}:lbweb/"))["Oper"]
        assert [p["endpointID"] for p in oper["providers"]] == [ids["lb1"]], oper
    finally:
        d1("rm", "-f", "lb1", "lb2", check=False)
        env.nm.delete("serviceLBs", f"{T}:lbweb")


def endpoint_id(d: Dockerd, name: str, network: str) -> str:
    return json.loads(d("inspect", name).stdout)[0]["NetworkSettings"]["Networks"][network]["EndpointID"]


def labels_of(env: Env, ep_id: str) -> dict[str, str]:
    return next((e.get("labels", {}) for e in tenant_state(env)[0] if e["endpointID"] == ep_id), {})


def test_container_labels_make_service_providers(env: Env) -> None:
    """``docker run --label app=api`` (no driver option): the agent, following dockerd's events, gives
    the container's endpoint the label, so a service selecting app=api lists it as a provider on either
    host and a client's connection to the VIP reaches it. Unlabelled containers are not providers; an
    ``io.contiv.*`` container label is left out; a driver-option label wins over the container's; a
    running container connected to another network gets its labels on that endpoint too."""
    d1, d2 = env.docker
    env.nm.post("serviceLBs", f"{T}:lbapi", tenantName=T, serviceName="lbapi", networkName="net",
                selectors=["app=api"], ports=["80:8080:TCP"])
    serve = "while true; do echo {} | nc -l -p 8080; done"
    try:
        d1("run", "-d", "--name", "la1", "--label", "app=api", "--network", "dk-web", IMAGE,
           "/bin/sh", "-c", serve.format("la1"))
        d2("run", "-d", "--name", "la2", "--label", "app=api", "--label", "io.contiv.tenant=other",
           "--label", "io.contiv.reservation=fedock:net:10.65.0.99", "--network", "dk-db", IMAGE,
           "/bin/sh", "-c", serve.format("la2"))
        run(d1, "la3", "dk-web")  # no label
        d1("run", "-d", "--name", "la4", "--label", "app=api", "--network", "name=dk-web,driver-opt=label.app=batch",
           IMAGE, "/bin/sleep", "600")  # the endpoint's option wins
        run(d2, "lac", "dk-web")  # the client
        ids = {"la1": endpoint_id(d1, "la1", "dk-web"), "la2": endpoint_id(d2, "la2", "dk-db"),
               "la4": endpoint_id(d1, "la4", "dk-web")}

        def providers() -> list[str] | None:
            oper = env.nm.ok(env.nm.http.get(f"/api/v1/inspect/serviceLBs/{T}:lbapi/"))["Oper"]
            found = sorted(p["endpointID"] for p in oper["providers"])
            return found if found == sorted([ids["la1"], ids["la2"]]) else None

        eventually(providers, timeout=60, what="the labelled containers as the service's providers")
        # the io.contiv.* labels are the driver's own (each endpoint's reservation claim), none from a container
        labels = {e["endpointID"]: e.get("labels", {}) for e in tenant_state(env)[0]}
        user = {ep: {k: v for k, v in lab.items() if not k.startswith("io.contiv.")} for ep, lab in labels.items()}
        assert user[ids["la2"]] == {"app": "api"}, labels
        assert "io.contiv.tenant" not in labels[ids["la2"]], labels
        assert labels[ids["la2"]]["io.contiv.reservation"] == f"{T}:net:{ip_of(d2, 'la2', 'dk-db')}", labels
        assert user[ids["la4"]] == {"app": "batch"}, labels
        assert user[endpoint_id(d1, "la3", "dk-web")] == {}, labels
        vip = env.nm.ok(env.nm.http.get(f"/api/v1/inspect/serviceLBs/{T}:lbapi/"))["Oper"]["serviceVip"]

        def answered() -> set[str]:
            got = set()
            for _ in range(6):
                out = d2("exec", "lac", "sh", "-c", f"nc -w 3 {vip} 80 </dev/null", check=False).stdout.strip()
                got.add(out)
            return got & {"la1", "la2"}

        eventually(answered, timeout=60, what=f"an answer through the VIP {vip}")
        # a running container connected to another network: its new endpoint gets the labels too
        wait_revision(env.cluster, env.nm.post("networks", f"{T}:net2", tenantName=T, networkName="net2",
                                               encap="vxlan", subnet="10.66.0.0/24"))
        d1("network", "create", "-d", "contiv", "--ipam-driver", "contiv", "--subnet", "10.66.0.0/24",
           "-o", f"tenant={T}", "-o", "network=net2", "dk-two")
        d1("network", "connect", "dk-two", "la1")
        second = endpoint_id(d1, "la1", "dk-two")
        eventually(lambda: labels_of(env, second).get("app") == "api", timeout=60,
                   what="the labels of a running container's newly connected endpoint")
    finally:
        d1("rm", "-f", "la1", "la3", "la4", check=False)
        d2("rm", "-f", "la2", "lac", check=False)
        d1("network", "rm", "dk-two", check=False)
        env.nm.delete("serviceLBs", f"{T}:lbapi")
        env.nm.delete("networks", f"{T}:net2")
