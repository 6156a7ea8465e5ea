"""Container plumbing with pyroute2: the veth pair between a container namespace and the bridge.

The host end stays in the agent's namespace and becomes an OVS port; the container end is created
directly inside the container's namespace under the requested interface name, with the endpoint's MAC
and MTU, then given its address and a default route via the network gateway. For a runtime that
moves the container end itself (Docker) it stays in the agent's namespace under a temporary name.

TX checksum offload is switched off on the container end: with the userspace (netdev) datapath nobody
fills in the checksum a veth leaves to "hardware", so TCP would silently fail while ping works.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import ipaddress
import logging
import socket
import struct
from contextlib import closing, nullcontext
from dataclasses import dataclass

from pyroute2 import IPRoute

from agent import rtnl
from agent.netns import iproute_in, open_netns, run_in

LOG = logging.getLogger(__name__)

_SIOCETHTOOL = 0x8946
_ETHTOOL_STXCSUM = 0x17
_ETHTOOL_VALUE = struct.Struct("=II")  # struct ethtool_value: cmd, data
_IFREQ_DATA = struct.Struct("16sP16x")  # struct ifreq (native): name, ifr_data, the rest of its 24-byte union


def host_ifname(endpoint_id: str) -> str:
    """Deterministic host-side name (≤15 chars), so a restarted agent finds its ports again."""
    return "ve" + hashlib.sha1(endpoint_id.encode()).hexdigest()[:11]


def container_ifname(endpoint_id: str) -> str:
    """The container end's name until it is moved and renamed (what a runtime that moves it sees)."""
    return _temp_ifname(endpoint_id)


def _temp_ifname(endpoint_id: str) -> str:
    return "vc" + hashlib.sha1(endpoint_id.encode()).hexdigest()[:11]


@dataclass(frozen=True)
class EndpointLink:
    endpoint_id: str
    netns: str
    ifname: str
    mac: str
    ip: str
    prefixlen: int
    mtu: int
    gateway: str = ""
    tx_offload: bool = False  # keep on only for a kernel datapath


class Plumber:
    """Creates and removes endpoint veth pairs. All calls are idempotent."""

    def host_links(self) -> set[str]:
        """Names of every link in the agent's namespace: one dump for a whole reconcile (libc's
        if_nameindex: parsing the dump with pyroute2 cost a full reconcile more than the rest)."""
        return {name for _, name in socket.if_nameindex()}

    def exists(self, endpoint_id: str) -> bool:
        with IPRoute() as ipr:
            return bool(ipr.link_lookup(ifname=host_ifname(endpoint_id)))

    def create(self, link: EndpointLink, replace: bool = False) -> str:
        """Create and configure the pair: ``prepare`` then ``configure``. Idempotent for a reconcile:
        an existing host end means it is done, unless *replace* (an endpoint call making the endpoint
        afresh: what an interrupted earlier call left is replaced)."""
        if not link.netns:
            return self._create_for_runtime(link)
        host_if = host_ifname(link.endpoint_id)
        if not replace and _has_link(host_if):
            return host_if
        self.prepare(link.endpoint_id, link.netns, link.ifname, link.mtu, link.mac)
        self.configure(link)
        return host_if

    def prepare(self, endpoint_id: str, netns: str, ifname: str, mtu: int, mac: str = "") -> str:
        """The pair alone: the host end up, ready to be an OVS port; the container end created directly
        inside *netns* (moving a link between namespaces costs the kernel an RCU grace period,
        ~20 ms) under *ifname*, with *mtu* and *mac*, down and unaddressed until ``configure``. A
        host end left over by an interrupted add of the same endpoint is replaced. A namespace that
        is gone raises FileNotFoundError, a taken *ifname* FileExistsError, both before anything is
        created."""
        host_if = host_ifname(endpoint_id)
        with open_netns(netns) as ns_fd, closing(rtnl.open_socket()) as nl:
            if _has_link(host_if):
                self.delete(endpoint_id)
            try:
                rtnl.request(nl, [rtnl.veth_message(host_if, ifname, mtu, mac, ns_fd),
                                  *rtnl.switch_port_messages(host_if)])
            except rtnl.RtnlError as exc:
                if exc.errno == errno.EEXIST:
                    raise FileExistsError(errno.EEXIST, f"interface {ifname} already exists in {netns}") from None
                raise
        return host_if

    def configure(self, link: EndpointLink) -> None:
        """Finish a prepared pair: the container end's MAC, MTU, address, loopback and default route
        (one netlink datagram, through sockets opened inside the namespace: ``agent.netns``, no fork),
        TX checksum offload off. On failure the pair is deleted (a half-configured container end is
        useless: start over)."""
        try:
            with open_netns(link.netns) as ns_fd:
                self._configure_container_end(link, ns_fd)
        except Exception:
            self.delete(link.endpoint_id)
            raise
        LOG.info("plumbed endpoint %s: %s <-> %s/%s", link.endpoint_id, host_ifname(link.endpoint_id), link.netns,
                 link.ifname)

    def _create_for_runtime(self, link: EndpointLink) -> str:
        """The pair with its container end left in the agent's namespace, for a runtime that moves and
        configures it itself (Docker)."""
        host_if, tmp_if = host_ifname(link.endpoint_id), _temp_ifname(link.endpoint_id)
        with IPRoute() as ipr:
            if ipr.link_lookup(ifname=host_if):
                return host_if
            for stale in ipr.link_lookup(ifname=tmp_if):  # left over by an interrupted create
                ipr.link("del", index=stale)
            ipr.link("add", ifname=host_if, kind="veth", mtu=link.mtu,
                     peer={"ifname": tmp_if, "mtu": link.mtu, "address": link.mac})
            try:
                if not link.tx_offload:
                    tx_checksum_off(tmp_if)
                for name in (tmp_if, host_if):
                    ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
            except Exception:
                ipr.link("del", index=ipr.link_lookup(ifname=host_if)[0])
                raise
        LOG.info("plumbed endpoint %s: %s <-> %s (left for the runtime)", link.endpoint_id, host_if, tmp_if)
        return host_if

    @staticmethod
    def _configure_container_end(link: EndpointLink, ns_fd: int) -> None:
        """MAC, MTU and link up, address, loopback up and default route in one netlink datagram; TX
        checksum offload off first. One thread in the namespace does it all."""
        rest = [rtnl.loopback_up_message(), *([rtnl.default_route_message(link.gateway)] if link.gateway else [])]

        def configure() -> None:
            with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as inet, \
                    closing(rtnl.open_socket()) as nl:
                index = rtnl.ifindex(inet, link.ifname)
                if not link.tx_offload:
                    tx_checksum_off(link.ifname, inet)
                rtnl.request(nl, [rtnl.link_message(index, up=True, mac=link.mac, mtu=link.mtu),
                                  rtnl.address_message(index, link.ip, link.prefixlen), *rest])

        run_in(ns_fd, configure)

    def container_end_ok(self, link: EndpointLink) -> str:
        """'' if the container end is in place with its address, else what is wrong (for CNI CHECK)."""
        try:
            with open_netns(link.netns) as ns_fd, iproute_in(ns_fd) as ns:
                idx = ns.link_lookup(ifname=link.ifname)
                if not idx:
                    return f"interface {link.ifname} missing in {link.netns}"
                addrs = {a.get_attr("IFA_ADDRESS") for a in ns.get_addr(index=idx[0], family=2)}
        except OSError as exc:
            return f"namespace {link.netns}: {exc}"
        return "" if link.ip in addrs else f"address {link.ip} missing on {link.ifname} in {link.netns}"

    def delete(self, endpoint_id: str) -> None:
        """Delete the pair by its host end (the container end goes with it); nothing to delete is fine."""
        with closing(rtnl.open_socket()) as nl:
            rtnl.request(nl, [rtnl.delete_link_message(host_ifname(endpoint_id))])


def _has_link(ifname: str) -> bool:
    """Whether *ifname* exists in the agent's namespace (libc, no netlink dump)."""
    try:
        socket.if_nametoindex(ifname)
    except OSError:
        return False
    return True


def tx_checksum_off(ifname: str, sock: socket.socket | None = None) -> None:
    """Switch TX checksum offload off on *ifname*: ethtool's ETHTOOL_STXCSUM, which clears every
    ``tx-checksum-*`` feature (IP, IPv6, generic and SCTP; what ``ethtool -K IF tx off`` changes) in
    one ioctl. *sock* decides the namespace the name is looked up in (default: the agent's; the
    caller keeps ownership of *sock*)."""
    value = ctypes.create_string_buffer(_ETHTOOL_VALUE.pack(_ETHTOOL_STXCSUM, 0), _ETHTOOL_VALUE.size)
    ifreq = _IFREQ_DATA.pack(ifname.encode(), ctypes.addressof(value))
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) if sock is None else nullcontext(sock) as s:
        fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifreq)


def prefixlen_of(subnet: str) -> int:
    return ipaddress.IPv4Network(subnet, strict=False).prefixlen
