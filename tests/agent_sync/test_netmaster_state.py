"""netmaster objects -> DesiredState, without processes: field mapping and tolerance of partial caches."""

from __future__ import annotations

from agent.local_endpoints import LocalEndpoint
from agent.netmaster_state import NmObject, build_state, with_last_known
from agent.state import Host, Qos, Rule
from contiv_api.mac import candidates
from contiv_api.netprofile import bandwidth_kbps


def _objects() -> list[NmObject]:
    return [
        NmObject("global", "global", {"fwdMode": "routing"}, {}),
        NmObject("network", "t:web", {"tenantName": "t", "networkName": "web", "encap": "vxlan",
                                      "subnet": "10.1.0.0/24", "gateway": "10.1.0.254"},
                 {"pktTag": 7, "externalPktTag": 5001}),
        NmObject("network", "t:lan", {"tenantName": "t", "networkName": "lan", "encap": "vlan",
                                      "subnet": "10.2.0.0/24", "gateway": ""}, {"pktTag": 100, "externalPktTag": 100}),
        NmObject("endpointGroup", "t:srv", {"tenantName": "t", "groupName": "srv", "networkName": "web",
                                            "policies": ["p"]}, {"endpointGroupId": 12}),
        NmObject("policy", "t:p", {"tenantName": "t", "policyName": "p"}, {}),
        NmObject("rule", "t:p:2", {"tenantName": "t", "policyName": "p", "ruleId": "2", "direction": "in",
                                   "priority": 10, "action": "allow", "protocol": "tcp", "port": 8000,
                                   "fromEndpointGroup": "srv", "fromIpAddress": ""}),
        NmObject("rule", "t:p:1", {"tenantName": "t", "policyName": "p", "ruleId": "1", "direction": "in",
                                   "priority": 1, "action": "deny", "protocol": "tcp", "port": 0}),
        NmObject("agent", "h1", {"hostLabel": "h1", "vtepIP": "192.168.1.1"}),
        NmObject("endpoint", "a", {"endpointID": "a", "tenantName": "t", "networkName": "web", "groupName": "srv",
                                   "host": "h1", "ipAddress": "10.1.0.1", "macAddress": "02:02:0a:01:00:01",
                                   "vtepIP": "192.168.1.1"}),
        NmObject("endpoint", "b", {"endpointID": "b", "tenantName": "t", "networkName": "web", "groupName": "",
                                   "host": "h2", "ipAddress": "10.1.0.2", "macAddress": "02:02:0a:01:00:02",
                                   "vtepIP": "192.168.1.2"}),
        NmObject("endpoint", "d", {"endpointID": "d", "tenantName": "t", "networkName": "lan", "host": "h1",
                                   "ipAddress": "10.2.0.5", "macAddress": "02:02:0a:02:00:05"}),
    ]


def test_fields_map_to_desired_state() -> None:
    local = {"a": LocalEndpoint("a", "t", "web", netns="/var/run/netns/ca", ifname="eth1"),
             "d": LocalEndpoint("d", "t", "lan", netns=None)}
    state = build_state(_objects(), local, "h1", revision=42)
    assert state.revision == 42
    assert state.fwd_mode == "routing"
    web, lan = state.network("t:web"), state.network("t:lan")
    assert web is not None
    assert (web.encap, web.vni, web.vlan, web.gateway) == ("vxlan", 5001, 0, "10.1.0.254")
    assert lan is not None
    assert (lan.encap, lan.vlan, lan.vni) == ("vlan", 100, 0)
    grp = state.group("t", "srv")
    assert grp is not None
    assert (grp.id, grp.network, grp.policies) == (12, "web", ("p",))
    pol = state.policy("t", "p")
    assert pol is not None
    assert [r.rule_id for r in pol.rules] == ["1", "2"]
    assert pol.rules[1] == Rule("2", "in", "allow", 10, from_group="srv", protocol="tcp", port=8000)
    a, b, d = state.endpoint("a"), state.endpoint("b"), state.endpoint("d")
    assert a is not None
    assert (a.netns, a.ifname, a.group, a.runtime_moves) == ("/var/run/netns/ca", "eth1", "srv", False)
    assert b is not None
    assert (b.host, b.netns) == ("h2", "")
    assert d is not None
    assert (d.netns, d.runtime_moves) == ("", True)
    # h1 from its agent record; h2 has none (expired) and falls back to its endpoint's vtepIP.
    assert state.hosts == (Host("h1", "192.168.1.1"), Host("h2", "192.168.1.2"))


def test_partial_cache_drops_dangling_references() -> None:
    objects = [o for o in _objects() if o.kind not in ("endpointGroup", "policy")]
    objects.append(NmObject("endpoint", "x", {"endpointID": "x", "tenantName": "t", "networkName": "gone",
                                              "host": "h1", "ipAddress": "10.9.0.1"}))
    objects.append(NmObject("rule", "t:q:1", {"tenantName": "t", "policyName": "q", "ruleId": "1",
                                              "direction": "sideways", "action": "allow"}))
    objects.append(NmObject("endpoint", "nomac", {"endpointID": "nomac", "tenantName": "t", "networkName": "web",
                                                  "host": "h1", "ipAddress": "10.1.0.9"}))
    state = build_state(objects, {}, "h1", revision=1)
    assert state.endpoint("x") is None  # its network is not (yet) known
    assert state.endpoint("nomac") is None, "a MAC comes from netmaster; the agent never derives one"
    a = state.endpoint("a")
    assert a is not None
    assert a.group == ""
    assert a.netns == ""
    assert not a.runtime_moves
    assert state.policies == ()
    assert state.fwd_mode == "routing"


def test_netprofile_and_arp_mode_map_to_desired_state() -> None:
    """A group's netProfile becomes its Qos (bandwidth in kbit/s, burst kilobytes -> kbits, DSCP 0 =
    unmarked); editing the profile changes the group's Qos; arpMode comes from the global object."""
    objs = [o for o in _objects() if o.kind != "endpointGroup" and o.kind != "global"]
    objs += [NmObject("global", "global", {"fwdMode": "bridge", "arpMode": "flood"}, {}),
             NmObject("netprofile", "t:gold", {"tenantName": "t", "profileName": "gold", "bandwidth": "10 mbps",
                                               "DSCP": 46, "burst": 500}),
             NmObject("endpointGroup", "t:srv", {"tenantName": "t", "groupName": "srv", "networkName": "web",
                                                 "policies": ["p"], "netProfile": "gold"}, {"endpointGroupId": 12})]
    state = build_state(objs, {}, "h1", revision=1)
    assert state.arp_mode == "flood"
    grp = state.group("t", "srv")
    assert grp is not None
    assert grp.qos == Qos("t:gold", rate_kbps=10_000, burst_kbits=4000, dscp=46)
    objs[-2] = NmObject("netprofile", "t:gold", {"tenantName": "t", "profileName": "gold", "bandwidth": "1Gb",
                                                 "DSCP": 0, "burst": 0})
    grp = build_state(objs, {}, "h1", revision=2).group("t", "srv")
    assert grp is not None
    assert grp.qos == Qos("t:gold", rate_kbps=1_000_000)
    assert grp.qos.burst == 200_000  # no burst given: 200 ms of the rate
    assert build_state(_objects(), {}, "h1", revision=3).arp_mode == "proxy"
    assert [bandwidth_kbps(t) for t in ("", "5Mb", "10 kbps", "2g")] == [0, 5000, 10, 2_000_000]


def _ep(ep_id: str, host: str, ip: str, network: str = "web") -> NmObject:
    """An endpoint record as netmaster stores it (with the MAC netmaster assigned: records without
    one are dropped by the agent)."""
    return NmObject("endpoint", ep_id, {"endpointID": ep_id, "tenantName": "t", "networkName": network,
                                        "host": host, "ipAddress": ip, "macAddress": next(candidates(ip)),
                                        "vtepIP": "192.168.1.9"})


def _ids(objects: list[NmObject]) -> dict[str, str]:
    return {o.key: o.object["ipAddress"] for o in objects if o.kind == "endpoint"}


def test_local_records_stay_in_the_state_whatever_netmaster_lists() -> None:
    """Endpoint GC collected this host's endpoint "a" during a partition: its local record keeps it."""
    base = [o for o in _objects() if o.key != "a"]
    local = {"a": LocalEndpoint("a", "t", "web", group="srv", netns="ca", ip="10.1.0.1", mac="02:02:0a:01:00:01")}
    objects, unlisted = with_last_known(base, local, (), "h1")
    assert unlisted == {"a": ""}
    state = build_state(objects, local, "h1", 1)
    a = state.endpoint("a")
    assert a is not None
    assert (a.ip, a.host, a.group, a.netns) == ("10.1.0.1", "h1", "srv", "ca")
    # listed as this host's: nothing is added or dropped
    assert with_last_known(_objects(), local, (), "h1") == (_objects(), {})


def test_a_local_record_wins_over_the_new_holder_of_its_address_on_this_host() -> None:
    base = [o for o in _objects() if o.key != "a"] + [_ep("x", "h3", "10.1.0.1")]
    local = {"a": LocalEndpoint("a", "t", "web", netns="ca", ip="10.1.0.1")}
    objects, unlisted = with_last_known(base, local, (), "h1")
    assert unlisted == {"a": "x"}
    assert "x" not in _ids(objects)
    assert _ids(objects)["a"] == "10.1.0.1"
    # the same address in another network is no conflict
    other = [o for o in _objects() if o.key != "a"] + [_ep("y", "h3", "10.1.0.1", network="lan")]
    assert with_last_known(other, local, (), "h1")[1] == {"a": ""}
    # the same id held by another host: the local container wins here too
    moved = [o for o in _objects() if o.key != "a"] + [_ep("a", "h3", "10.1.0.7")]
    objects, unlisted = with_last_known(moved, local, (), "h1")
    assert unlisted == {"a": "a"}
    assert _ids(objects)["a"] == "10.1.0.1"


def test_retained_remote_endpoints_last_until_their_id_or_address_is_listed() -> None:
    gone = _ep("r", "h3", "10.1.0.9")
    objects, _ = with_last_known(_objects(), {}, [gone], "h1")
    assert _ids(objects)["r"] == "10.1.0.9"
    assert build_state(objects, {}, "h1", 1).endpoint("r") is not None
    reused = [*_objects(), _ep("n", "h2", "10.1.0.9")]
    assert "r" not in _ids(with_last_known(reused, {}, [gone], "h1")[0])
    reclaimed = [*_objects(), _ep("r", "h3", "10.1.0.9")]
    assert [o.key for o in with_last_known(reclaimed, {}, [gone], "h1")[0]].count("r") == 1
