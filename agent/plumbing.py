"""Container plumbing with pyroute2: the veth pair between a container namespace and the bridge.

The host end stays in the agent's namespace and becomes an OVS port; the container end is created
directly inside the container's namespace under the requested interface name, with the endpoint's MAC
and MTU, then given its address and a default route via the network gateway. For a runtime that
moves the container end itself (Docker) it stays in the agent's namespace under a temporary name.

TX checksum offload is switched off on the container end: with the userspace (netdev) datapath nobody
fills in the checksum a veth leaves to "hardware", so TCP would silently fail while ping works.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import logging
import socket
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.ethtool.ethtool import EthtoolFeatures
from pyroute2.ethtool.ioctl import IoctlEthtool
from pyroute2.netlink.exceptions import NetlinkError

from agent.netns import iproute_in, open_netns, socket_in

LOG = logging.getLogger(__name__)

_TX_CSUM_FEATURES = ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6", "tx-checksum-sctp")


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

    def create(self, link: EndpointLink) -> str:
        """Create and configure the pair (idempotent: an existing host end means it is done).

        With a namespace the container end is created right there, already named, addressed by MAC
        and sized (moving a link between namespaces costs the kernel an RCU grace period, ~20 ms),
        and configured through sockets opened inside the namespace (``agent.netns``, no fork). A
        namespace that is gone raises FileNotFoundError before anything is created."""
        if not link.netns:
            return self._create_for_runtime(link)
        host_if = host_ifname(link.endpoint_id)
        with open_netns(link.netns) as ns_fd, IPRoute() as ipr:
            if ipr.link_lookup(ifname=host_if):
                return host_if
            try:
                ipr.link("add", ifname=host_if, kind="veth", mtu=link.mtu,
                         peer={"ifname": link.ifname, "mtu": link.mtu, "address": link.mac, "net_ns_fd": ns_fd})
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    raise FileExistsError(errno.EEXIST, f"interface {link.ifname} already exists in "
                                                        f"{link.netns}") from None
                raise
            try:
                self._configure_container_end(link, ns_fd)
                ipr.link("set", index=ipr.link_lookup(ifname=host_if)[0], state="up")
            except Exception:
                self.delete(link.endpoint_id)  # a half-configured container end is useless: start over
                raise
        LOG.info("plumbed endpoint %s: %s <-> %s/%s", link.endpoint_id, host_if, link.netns, link.ifname)
        return host_if

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
                    _tx_checksum_off(tmp_if)
                for name in (tmp_if, host_if):
                    ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
            except Exception:
                ipr.link("del", index=ipr.link_lookup(ifname=host_if)[0])
                raise
        LOG.info("plumbed endpoint %s: %s <-> %s (left for the runtime)", link.endpoint_id, host_if, tmp_if)
        return host_if

    @staticmethod
    def _configure_container_end(link: EndpointLink, ns_fd: int) -> None:
        if not link.tx_offload:
            _tx_checksum_off(link.ifname, socket_in(ns_fd, socket.AF_INET, socket.SOCK_DGRAM))
        with iproute_in(ns_fd) as ns:
            idx = ns.link_lookup(ifname=link.ifname)[0]
            ns.addr("add", index=idx, address=link.ip, prefixlen=link.prefixlen)
            ns.link("set", index=idx, state="up")
            for lo in ns.link_lookup(ifname="lo"):
                ns.link("set", index=lo, state="up")
            if link.gateway:
                ns.route("add", dst="0.0.0.0/0", gateway=link.gateway)

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
        """Delete the pair by its host end (the container end goes with it)."""
        with IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=host_ifname(endpoint_id)):
                try:
                    ipr.link("del", index=idx)
                except NetlinkError as exc:
                    if exc.code != 19:  # ENODEV: already gone
                        raise


def _tx_checksum_off(ifname: str, sock: socket.socket | None = None) -> None:
    """Switch TX checksum offload off on *ifname* (ethtool's ioctl, as ``Ethtool.set_features`` does);
    *sock* decides the namespace the name is looked up in (default: the agent's)."""
    eth = IoctlEthtool()
    if sock is not None:
        eth.sock.close()
        eth.sock = sock
    try:
        eth.change_ifname(ifname)
        features = EthtoolFeatures.from_ioctl(features=eth.get_features(), offload_flags=eth.get_offload_flags())
        for name in _TX_CSUM_FEATURES:
            if name in features.features:
                features.features[name].enable = False
        ioctl_features = eth.get_features()
        EthtoolFeatures.to_ioctl(ioctl_features, features)
        eth.set_features(ioctl_features)
    finally:
        eth.close()


def prefixlen_of(subnet: str) -> int:
    return ipaddress.IPv4Network(subnet, strict=False).prefixlen
