"""The router port's kernel side: address, MAC, and the neighbours (next hops) behind it.

The router port (``inb01``, Contiv's name) is an OVS internal port in the agent's namespace. It holds
the router IP, so the BGP speaker's sessions leave and arrive through the bridge and the uplink, and
the kernel's ARP on it resolves the next hops (the ToRs) whose MACs the learned-route flows need.

Its MAC is derived from the router IP (``02:fe:`` + the four address bytes): stable across agent
restarts (the flows stay identical) and distinct per host, so the ToR's segment learns each host's
router port by its own MAC (container MACs are ``02:02:`` + their address: no collision).
Configuring is idempotent and never removes the router IP while it is wanted: deleting it would
reset the BGP sessions.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from contextlib import closing

from pyroute2 import IPRoute

from agent.plumbing import tx_checksum_off

_NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80  # REACHABLE STALE DELAY PROBE NOARP PERMANENT


def router_mac(router_ip: str) -> str:
    """The router port's MAC for *router_ip* (an address, no prefix length)."""
    return "02:fe:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(router_ip).packed)


def configure(ifname: str, router_ip: str, mac: str, tx_offload: bool) -> None:
    """Give *ifname* its MAC and the router IP (``a.b.c.d/len``), up; drop any other IPv4 address.
    TX checksum offload off on the userspace datapath, which never completes a checksum."""
    iface = ipaddress.IPv4Interface(router_ip)
    with IPRoute() as ipr:
        (index,) = ipr.link_lookup(ifname=ifname)
        link = ipr.get_links(index)[0]
        if link.get_attr("IFLA_ADDRESS") != mac:
            ipr.link("set", index=index, address=mac)
        ipr.link("set", index=index, state="up")
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=socket.AF_INET)}
        for address, plen in have - {(str(iface.ip), iface.network.prefixlen)}:
            ipr.addr("del", index=index, address=address, prefixlen=plen)
        if (str(iface.ip), iface.network.prefixlen) not in have:
            ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    if not tx_offload:
        tx_checksum_off(ifname)


def neighbor_mac(ifname: str, ip: str) -> str:
    """The MAC of *ip* in the kernel's neighbour table on *ifname*; '' when unknown or failed."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return ""
        for entry in ipr.get_neighbours(family=socket.AF_INET, ifindex=found[0], dst=ip):
            if entry["state"] & _NUD_USABLE and entry.get_attr("NDA_LLADDR"):
                return str(entry.get_attr("NDA_LLADDR"))
    return ""


def solicit(ifname: str, ip: str) -> None:
    """Make the kernel resolve *ip* on *ifname* (an ARP request goes out): one UDP datagram to the
    discard port. Best effort: resolution is retried by the caller."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            sock.sendto(b"", (ip, 9))
        except OSError as exc:
            if exc.errno not in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENODEV):
                raise
