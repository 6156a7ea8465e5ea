"""agent.rtnl against the real kernel: what the hand-packed messages create, and how refusals surface."""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import closing

import pytest

from agent import rtnl
from agent.netns import open_netns, socket_in
from testbed.cluster.prereq import requires

pytestmark = requires("needs root (network namespaces)" if os.geteuid() != 0 else None)


@pytest.fixture
def netns() -> Iterator[str]:
    name = "rt" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def host_if() -> Iterator[str]:
    name = "rt" + secrets.token_hex(5)
    yield name
    subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _ip(netns: str | None, *args: str) -> object:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return json.loads(subprocess.run([*prefix, "ip", "-j", *args], check=True, capture_output=True, text=True).stdout)


def _configure(netns: str, ifname: str, messages: list[rtnl.Message]) -> None:
    with open_netns(netns) as fd, closing(socket_in(fd, socket.AF_NETLINK, socket.SOCK_DGRAM,
                                                    socket.NETLINK_ROUTE)) as nl:
        rtnl.request(nl, messages)


def _ns_ifindex(netns: str, ifname: str) -> int:
    with open_netns(netns) as fd, closing(socket_in(fd, socket.AF_INET, socket.SOCK_DGRAM)) as inet:
        return rtnl.ifindex(inet, ifname)


def test_veth_into_namespace_then_one_batch_configures_it(netns: str, host_if: str) -> None:
    with open_netns(netns) as fd, closing(rtnl.open_socket()) as nl:
        rtnl.request(nl, [rtnl.veth_message(host_if, "eth0", 1400, "02:00:00:aa:bb:cc", fd),
                          *rtnl.switch_port_messages(host_if)])
    host = _ip(None, "-d", "link", "show", host_if)[0]
    assert host["mtu"] == 1400
    assert {"UP", "PROMISC"} <= set(host["flags"])
    assert host["inet6_addr_gen_mode"] == "none"
    index = _ns_ifindex(netns, "eth0")
    _configure(netns, "eth0", [rtnl.link_message(index, up=True), rtnl.address_message(index, "10.77.0.5", 24),
                               rtnl.loopback_up_message(), rtnl.default_route_message("10.77.0.1")])
    links = {link["ifname"]: link for link in _ip(netns, "addr", "show")}
    eth0 = links["eth0"]
    assert eth0["address"] == "02:00:00:aa:bb:cc"
    assert eth0["mtu"] == 1400
    assert "UP" in eth0["flags"]
    assert {(a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"} == {("10.77.0.5", 24)}
    assert "UP" in links["lo"]["flags"]
    routes = _ip(netns, "route", "show", "default")
    assert [(r["gateway"], r["dev"]) for r in routes] == [("10.77.0.1", "eth0")]
    # the container end is up, so the host end has carrier: still no address of any family on it
    host = _ip(None, "addr", "show", host_if)[0]
    assert "LOWER_UP" in host["flags"]
    assert host["addr_info"] == []


def test_existing_name_is_refused_and_nothing_is_created(netns: str, host_if: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "add", "eth0", "type", "veth",
                    "peer", "name", "p0"], check=True)
    with open_netns(netns) as fd, closing(rtnl.open_socket()) as nl, pytest.raises(rtnl.RtnlError) as exc:
        rtnl.request(nl, [rtnl.veth_message(host_if, "eth0", 1500, "02:00:00:aa:bb:cd", fd)])
    assert exc.value.errno == errno.EEXIST
    assert subprocess.run(["ip", "link", "show", host_if], capture_output=True).returncode != 0
    assert sorted(link["ifname"] for link in _ip(netns, "link", "show")) == ["eth0", "lo", "p0"]


def test_a_refused_message_in_a_batch_is_raised_after_every_ack(netns: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "add", "d0", "type", "veth",
                    "peer", "name", "d1"], check=True)
    index = _ns_ifindex(netns, "d0")
    with pytest.raises(rtnl.RtnlError) as exc:  # the gateway is not on any connected subnet
        _configure(netns, "d0", [rtnl.link_message(index, up=True), rtnl.default_route_message("10.9.9.1"),
                                 rtnl.address_message(index, "10.78.0.2", 24)])
    assert exc.value.errno == errno.ENETUNREACH
    # the kernel went on with the message after the refused one
    d0 = _ip(netns, "addr", "show", "d0")[0]
    assert [a["local"] for a in d0["addr_info"] if a["family"] == "inet"] == ["10.78.0.2"]


def test_a_tolerated_refusal_is_not_raised(netns: str) -> None:
    index = _ns_ifindex(netns, "lo")
    missing = rtnl.link_message(4242, up=True)
    with pytest.raises(rtnl.RtnlError):
        _configure(netns, "lo", [missing])
    _configure(netns, "lo", [missing._replace(tolerate=(errno.ENODEV,)), rtnl.link_message(index, up=True)])
    assert "UP" in _ip(netns, "link", "show", "lo")[0]["flags"]


def test_ifindex_of_a_missing_interface(netns: str) -> None:
    with pytest.raises(rtnl.RtnlError) as exc:
        _ns_ifindex(netns, "nosuch0")
    assert exc.value.errno == errno.ENODEV
    assert _ns_ifindex(netns, "lo") == 1
