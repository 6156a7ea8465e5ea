"""netprofile QoS (rate limit by meter, DSCP marking) and arpMode (proxy, flood), with real packets on
a two-host simulated cluster: measured TCP throughput, DSCP and ARP seen by tcpdump in the receiver."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import Path

from agent.state import DesiredState, Endpoint, EndpointGroup, Network, Qos
from testbed.cluster import in_ns
from testbed.netcheck import Pinger, ping, ping_eventually
from testbed.traffic import Capture, Stream, mbits
from testbed.waiting import eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

NET = Network("t1", "net", "vxlan", "10.7.0.0/24", vni=7100)
UNKNOWN_IP = "10.7.0.99"
LIMITED = EndpointGroup("t1", "limited", 11, "net")


def _qos_state(env: ClusterEnv, qos: Qos | None) -> tuple[DesiredState, str, str, str]:
    """a (group limited) and c (no group) on h1, b (no group) on h2."""
    a, b, c = env.container("a"), env.container("b"), env.container("c")
    state = DesiredState(networks=(NET,), groups=(replace(LIMITED, qos=qos),), endpoints=(
        Endpoint("a", "t1", "net", "10.7.0.1", "h1", group="limited", netns=a),
        Endpoint("b", "t1", "net", "10.7.0.2", "h2", netns=b),
        Endpoint("c", "t1", "net", "10.7.0.3", "h1", netns=c)))
    return env.apply(state), a, b, c


def _with_qos(state: DesiredState, qos: Qos | None) -> DesiredState:
    return replace(state, groups=(replace(LIMITED, qos=qos),))


def _meter_of(env: ClusterEnv) -> str:
    return env.cluster.hosts[0].ovs.run("ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "contivbr")


def test_bandwidth_is_a_meter_measured_live(env: ClusterEnv) -> None:
    """10 Mbit/s: a TCP stream from a member measures within 20% of it, while an unlimited container
    on the same host does far more in the same run; changed to 20 Mbit/s during one connection the
    rate follows, and removed, the meter goes."""
    state, a, b, c = _qos_state(env, Qos("t1:ten", rate_kbps=10_000))
    assert ping_eventually(a, "10.7.0.2")
    assert ping_eventually(c, "10.7.0.2")
    assert "rate=10000" in _meter_of(env)

    limited = mbits(Stream(a, b, "10.7.0.2", 5001, 4).intervals()[4:])  # the first second holds the burst
    unlimited = mbits(Stream(c, b, "10.7.0.2", 5002, 4).intervals()[4:])
    assert 8.0 <= limited <= 12.0, f"limited to 10 Mbit/s, measured {limited:.2f}"
    assert unlimited > 3 * 10, f"without the profile {unlimited:.2f} Mbit/s: the control shows no limit"

    stream = Stream(a, b, "10.7.0.2", 5003, 9)
    eventually(lambda: stream.receiver.poll() is None and in_ns(b, "ss", "-tn", check=False).stdout.count("ESTAB"),
               timeout=10)
    env.apply(_with_qos(state, Qos("t1:ten", rate_kbps=20_000)))
    chunks = stream.intervals()
    changed_at = next(i for i, n in enumerate(chunks) if n)  # from the first byte; the change came ~1 s in
    after = mbits(chunks[changed_at + 16:])  # 4 s after the start: well after the change
    assert 16.0 <= after <= 24.0, f"raised to 20 Mbit/s on the running connection, measured {after:.2f}"
    assert "rate=20000" in _meter_of(env)

    env.apply(_with_qos(state, None))
    eventually(lambda: "meter=" not in _meter_of(env), timeout=10)
    free = mbits(Stream(a, b, "10.7.0.2", 5004, 3).intervals()[4:])
    assert free > 3 * 20, f"profile removed, still limited: {free:.2f} Mbit/s"


def test_dscp_is_marked_on_the_wire(env: ClusterEnv, tmp_path: Path) -> None:
    """DSCP 46 (EF): the receiver on the other host (VXLAN) sees tos 0xb8 on the member's packets and
    the unmarked container's packets as they were sent (tos 0x0)."""
    _, a, b, c = _qos_state(env, Qos("t1:ef", dscp=46))
    assert ping_eventually(a, "10.7.0.2")
    assert ping_eventually(c, "10.7.0.2")
    capture = Capture(b, "icmp[icmptype] == icmp-echo", tmp_path)
    try:
        assert ping(a, "10.7.0.2", count=2)
        assert ping(c, "10.7.0.2", count=2)
    finally:
        seen = capture.stop()
    by_source = _tos_by_source(seen)
    assert by_source.get("10.7.0.1") == {"0xb8"}, seen
    assert by_source.get("10.7.0.3") == {"0x0"}, seen
    info = env.cluster.hosts[0].get("/inspect/driver")[1]
    assert info["qos"] == [{"endpoint": "a", "group": "limited", "profile": "t1:ef", "ofport": info["qos"][0]["ofport"],
                            "meter": None, "rate_kbps": 0, "burst_kbits": 0, "dscp": 46}]


def _tos_by_source(tcpdump_v: str) -> dict[str, set[str]]:
    """tcpdump -v prints "IP (tos 0x.., ...)" and on the next line "src > dst: ...": pair them."""
    out: dict[str, set[str]] = {}
    lines = tcpdump_v.splitlines()
    for first, second in itertools.pairwise(lines):
        tos = re.search(r"\(tos (0x[0-9a-f]+)", first)
        src = re.match(r"\s+(\d+\.\d+\.\d+\.\d+) > ", second)
        if tos and src:
            out.setdefault(src.group(1), set()).add(tos.group(1))
    return out


def _arp_requests_for(capture_text: str, ip: str) -> int:
    return len(re.findall(rf"Request who-has {re.escape(ip)} ", capture_text))


def _replies_from(capture_text: str, ip: str) -> int:
    return len(re.findall(rf"Reply {re.escape(ip)} is-at ", capture_text))


def _resolve(src: str, dst: str, dst_ip: str, tmp_path: Path) -> str:
    """Forget *dst_ip* in *src*, ping it, and return what tcpdump on *dst* saw of ARP meanwhile. The
    capture ends only once it has shown a control: a request for an address no endpoint has, which
    floods in both modes (so "no request seen" means none came, not that the capture missed it)."""
    capture = Capture(dst, "arp", tmp_path)  # first: a running ping re-resolves right after the flush
    try:
        in_ns(src, "ip", "neigh", "flush", "dev", "eth0")
        reached = ping_eventually(src, dst_ip)
        eventually(lambda: in_ns(src, "busybox", "arping", "-c", "1", "-w", "1", "-I", "eth0", UNKNOWN_IP,
                                 check=False) and _arp_requests_for(capture.text(), UNKNOWN_IP),
                   timeout=15, what="the control request in the capture")
    finally:
        seen = capture.stop()
    assert reached, f"ping {dst_ip} failed; ARP at the target: {seen}"
    return seen


def test_arp_mode_flood_and_proxy_switched_with_endpoints(env: ClusterEnv, tmp_path: Path) -> None:
    """proxy: the switch answers, no request reaches the target; flood: the target itself receives the
    request and answers (same host and across hosts); switching back and forth keeps a running ping."""
    a, b, c = env.container("a"), env.container("b"), env.container("c")
    proxy = env.apply(DesiredState(networks=(NET,), endpoints=(
        Endpoint("a", "t1", "net", "10.7.0.1", "h1", netns=a),
        Endpoint("b", "t1", "net", "10.7.0.2", "h2", netns=b),
        Endpoint("c", "t1", "net", "10.7.0.3", "h1", netns=c))))
    assert ping_eventually(a, "10.7.0.2")
    assert ping_eventually(a, "10.7.0.3")

    for target, ip in ((b, "10.7.0.2"), (c, "10.7.0.3")):
        seen = _resolve(a, target, ip, tmp_path)
        assert _arp_requests_for(seen, ip) == 0, f"proxy mode: the request reached {ip}: {seen}"

    pinger = Pinger(a, "10.7.0.2")
    flood = env.apply(replace(proxy, arp_mode="flood"))
    assert env.cluster.hosts[0].get("/inspect/driver")[1]["arp_mode"] == "flood"
    for target, ip in ((b, "10.7.0.2"), (c, "10.7.0.3")):
        seen = _resolve(a, target, ip, tmp_path)
        assert _arp_requests_for(seen, ip) >= 1, f"flood mode: no request reached {ip}: {seen}"
        assert _replies_from(seen, ip) >= 1, f"flood mode: {ip} did not answer itself: {seen}"
    env.apply(replace(flood, arp_mode="proxy"))
    result = pinger.stop()
    assert max(result.replies, default=0) > 50, "the ping ran through both switches"
    assert result.lost <= 2, f"switching arpMode cost the running ping {result.lost} echoes"
    seen = _resolve(a, b, "10.7.0.2", tmp_path)
    assert _arp_requests_for(seen, "10.7.0.2") == 0, f"back to proxy: the request reached the target: {seen}"


def test_a_restarted_agent_takes_over_the_meters_it_finds(env: ClusterEnv) -> None:
    """The switch keeps an earlier agent's meters: a new agent process (full sync) replaces them with
    the ones it wants (a changed rate here) and leaves no other, without an error, and the new rate
    holds."""
    state, a, b, _ = _qos_state(env, Qos("t1:ten", rate_kbps=10_000))
    assert ping_eventually(a, "10.7.0.2")
    h1 = env.cluster.hosts[0]
    ofport = h1.get("/inspect/driver")[1]["qos"][0]["ofport"]
    stale = ofport + 40  # a meter no endpoint uses, as a crashed agent could leave behind
    h1.ovs.run("ovs-ofctl", "-O", "OpenFlow13", "add-meter", h1.bridge,
               f"meter={stale} kbps burst stats bands=type=drop rate=1000 burst_size=100")
    env.cluster.kill_agent(h1)
    slower = replace(_with_qos(state, Qos("t1:ten", rate_kbps=5_000)), revision=state.revision + 1000)
    for host in env.cluster.hosts:
        slower.save(host.state_file)
    log_before = len(env.cluster.agent_log(h1))
    env.cluster.start_agent(h1)
    eventually(lambda: h1.get("/inspect/driver")[1]["revision"] == slower.revision, timeout=20)
    meters = _meter_of(env)
    assert f"meter={ofport} kbps burst stats" in meters
    assert "rate=5000 burst_size=1000" in meters
    assert f"meter={stale} " not in meters, meters
    log = env.cluster.agent_log(h1)[log_before:]
    assert "failed" not in log, log[-2000:]
    assert "OpenFlow error" not in log, log[-2000:]
    rate = mbits(Stream(a, b, "10.7.0.2", 5006, 3).intervals()[4:])
    assert 4.0 <= rate <= 6.0, f"5 Mbit/s after the restart, measured {rate:.2f}"
