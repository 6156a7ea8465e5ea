"""Container plumbing with pyroute2: the veth pair between a container namespace and the bridge.

The host end stays in the agent's namespace and becomes an OVS port; the container end is configured
while it is still on the host side (features survive the move), then moved into the container's
namespace, renamed to the requested interface name and given the endpoint's MAC, address, MTU and a
default route via the network gateway.

TX checksum offload is switched off on the container end: with the userspace (netdev) datapath nobody
fills in the checksum a veth leaves to "hardware", so TCP would silently fail while ping works.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass

from pyroute2 import Ethtool, IPRoute
from pyroute2.netlink.exceptions import NetlinkError

LOG = logging.getLogger(__name__)

_TX_CSUM_FEATURES = ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6", "tx-checksum-sctp")


def host_ifname(endpoint_id: str) -> str:
    """Deterministic host-side name (≤15 chars), so a restarted agent finds its ports again."""
    return "ve" + hashlib.sha1(endpoint_id.encode()).hexdigest()[:11]


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

    def exists(self, endpoint_id: str) -> bool:
        with IPRoute() as ipr:
            return bool(ipr.link_lookup(ifname=host_ifname(endpoint_id)))

    def create(self, link: EndpointLink) -> str:
        host_if, tmp_if = host_ifname(link.endpoint_id), _temp_ifname(link.endpoint_id)
        with IPRoute() as ipr:
            if ipr.link_lookup(ifname=host_if):
                return host_if
            for stale in ipr.link_lookup(ifname=tmp_if):  # left over by an interrupted create
                ipr.link("del", index=stale)
            ipr.link("add", ifname=host_if, kind="veth", peer={"ifname": tmp_if})
            try:
                host_idx = ipr.link_lookup(ifname=host_if)[0]
                peer_idx = ipr.link_lookup(ifname=tmp_if)[0]
                ipr.link("set", index=host_idx, mtu=link.mtu)
                ipr.link("set", index=peer_idx, mtu=link.mtu)
                if not link.tx_offload:
                    _tx_checksum_off(tmp_if)
                ipr.link("set", index=peer_idx, net_ns_fd=link.netns)
                ipr.link("set", index=host_idx, state="up")
            except Exception:
                ipr.link("del", index=ipr.link_lookup(ifname=host_if)[0])
                raise
        self._configure_container_end(link, tmp_if)
        LOG.info("plumbed endpoint %s: %s <-> %s/%s", link.endpoint_id, host_if, link.netns, link.ifname)
        return host_if

    @staticmethod
    def _configure_container_end(link: EndpointLink, tmp_if: str) -> None:
        with IPRoute(netns=link.netns) as ns:
            idx = ns.link_lookup(ifname=tmp_if)[0]
            ns.link("set", index=idx, ifname=link.ifname, address=link.mac)
            ns.addr("add", index=idx, address=link.ip, prefixlen=link.prefixlen)
            ns.link("set", index=idx, state="up")
            for lo in ns.link_lookup(ifname="lo"):
                ns.link("set", index=lo, state="up")
            if link.gateway:
                ns.route("add", dst="0.0.0.0/0", gateway=link.gateway)

    def delete(self, endpoint_id: str) -> None:
        """Delete the pair by its host end (the container end goes with it)."""
        with IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=host_ifname(endpoint_id)):
                try:
                    ipr.link("del", index=idx)
                except NetlinkError as exc:
                    if exc.code != 19:  # ENODEV: already gone
                        raise


def _tx_checksum_off(ifname: str) -> None:
    eth = Ethtool()
    try:
        features = eth.get_features(ifname)
        for name in _TX_CSUM_FEATURES:
            if name in features.features:
                features.features[name].enable = False
        eth.set_features(ifname, features)
    finally:
        eth.close()


def prefixlen_of(subnet: str) -> int:
    return ipaddress.IPv4Network(subnet, strict=False).prefixlen
