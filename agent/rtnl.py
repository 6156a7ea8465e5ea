"""Raw rtnetlink requests for the CNI ADD path: the few messages an endpoint needs, packed by hand.

pyroute2 runs each request through its asyncio machinery and generic message classes: ~1 ms of
CPU per call, 15-20 ms for the veth, its container end and their configuration, while the kernel
does the work in ~3 ms. Here each request is a ``struct``-packed message on a plain netlink
socket, and the container end's configuration (address, loopback up, default route) goes to the
kernel as one datagram: rtnetlink processes the messages of a datagram in order and acks each.
The host end is made a switch port in the same datagram (up, promiscuous, no IPv6: one burst of
link events for ovs-vswitchd, which reconfigures the whole bridge on each); a veth is deleted by one
RTM_DELLINK. Reads and the rarer paths stay with pyroute2.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from typing import NamedTuple

_NLMSG_ERROR = 2
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_RTM_NEWLINK, _RTM_DELLINK, _RTM_NEWADDR, _RTM_NEWROUTE = 16, 17, 20, 24
_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_LINKINFO, _IFLA_NET_NS_FD = 1, 3, 4, 18, 28
_IFLA_INFO_KIND, _IFLA_INFO_DATA, _VETH_INFO_PEER = 1, 2, 1
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RTA_GATEWAY = 5
_RT_TABLE_MAIN, _RTPROT_BOOT, _RT_SCOPE_UNIVERSE, _RTN_UNICAST = 254, 3, 0, 1
_IFF_UP = 0x1
_IFF_PROMISC = 0x100
_IFLA_AF_SPEC = 26
_AF_INET6 = 10
_IFLA_INET6_ADDR_GEN_MODE = 8
_IN6_ADDR_GEN_MODE_NONE = 1
_LOOPBACK_IFINDEX = 1  # the kernel registers every namespace's loopback with index 1
_SIOCGIFINDEX = 0x8933

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBi")
_RTMSG = struct.Struct("=BBBBBBBBI")


class Message(NamedTuple):
    kind: int
    body: bytes
    create: bool = True  # NLM_F_CREATE|NLM_F_EXCL: a create that fails if the object exists
    tolerate: tuple[int, ...] = ()  # errnos that do not fail the request (a nicety the kernel may lack)


class RtnlError(OSError):
    """A request the kernel refused; ``errno`` is the kernel's error."""


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _name(ifname: str) -> bytes:
    return ifname.encode() + b"\0"


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _mtu_mac(mtu: int, mac: str) -> bytes:
    """IFLA_MTU and IFLA_ADDRESS, each only if given."""
    mtu_attr = _attr(_IFLA_MTU, struct.pack("=I", mtu)) if mtu else b""
    return mtu_attr + (_attr(_IFLA_ADDRESS, _mac(mac)) if mac else b"")


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, _IFF_UP if up else 0, _IFF_UP if up else 0)


def veth_message(host_if: str, peer_if: str, mtu: int, peer_mac: str, peer_ns_fd: int) -> Message:
    """RTM_NEWLINK creating veth *host_if* (this namespace, down: ``switch_port_messages`` next) and
    its peer *peer_if* inside the namespace *peer_ns_fd*, with the MTU and the peer's MAC if given
    (fails if either name exists). The peer cannot be created up (veth's open refuses while the pair
    is not linked yet: ENOTCONN)."""
    peer = _ifinfo() + _attr(_IFLA_IFNAME, _name(peer_if)) + _mtu_mac(mtu, peer_mac) \
        + _attr(_IFLA_NET_NS_FD, struct.pack("=i", peer_ns_fd))
    info = _attr(_IFLA_INFO_KIND, b"veth\0") + _attr(_IFLA_INFO_DATA, _attr(_VETH_INFO_PEER, peer))
    body = _ifinfo() + _attr(_IFLA_IFNAME, _name(host_if)) + _attr(_IFLA_MTU, struct.pack("=I", mtu)) \
        + _attr(_IFLA_LINKINFO, info)
    return Message(_RTM_NEWLINK, body)


def switch_port_messages(host_if: str) -> list[Message]:
    """Make the new host end *host_if* a switch port: up and promiscuous (ovs-vswitchd would set
    promiscuous mode itself once the port is added, one more link change it would then react to with
    another full reconfiguration), and without IPv6 addresses (a port of a switch has no business
    with a link-local address, router solicitations or MLD reports; created without it, it
    generates no address events either). IPv6 may be missing from the kernel: tolerated."""
    flags = _IFF_UP | _IFF_PROMISC
    no_ipv6 = _attr(_IFLA_AF_SPEC, _attr(_AF_INET6, _attr(_IFLA_INET6_ADDR_GEN_MODE,
                                                            bytes([_IN6_ADDR_GEN_MODE_NONE]))))
    by_name = _attr(_IFLA_IFNAME, _name(host_if))
    return [Message(_RTM_NEWLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, flags, flags) + by_name, create=False),
            Message(_RTM_NEWLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + by_name + no_ipv6, create=False,
                    tolerate=(errno.EAFNOSUPPORT, errno.EOPNOTSUPP))]


def delete_link_message(ifname: str) -> Message:
    """RTM_DELLINK for the link named *ifname* (a veth takes its peer with it); one that is already
    gone is not an error."""
    return Message(_RTM_DELLINK, _ifinfo() + _attr(_IFLA_IFNAME, _name(ifname)), create=False,
                   tolerate=(errno.ENODEV,))


def address_message(index: int, ip: str, prefixlen: int) -> Message:
    """RTM_NEWADDR: IPv4 *ip*/*prefixlen* on link *index*."""
    packed = ipaddress.IPv4Address(ip).packed
    return Message(_RTM_NEWADDR, _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, 0, index)
                   + _attr(_IFA_LOCAL, packed) + _attr(_IFA_ADDRESS, packed))


def link_message(index: int, up: bool = False, mac: str = "", mtu: int = 0) -> Message:
    """RTM_NEWLINK changing link *index*: its MAC and MTU if given, then up if *up* (the kernel sets
    the address before the flags, so a link comes up with its MAC)."""
    return Message(_RTM_NEWLINK, _ifinfo(index, up=up) + _mtu_mac(mtu, mac), create=False)


def loopback_up_message() -> Message:
    return link_message(_LOOPBACK_IFINDEX, up=True)


def default_route_message(gateway: str) -> Message:
    """RTM_NEWROUTE: the IPv4 default route via *gateway* in the main table."""
    rtmsg = _RTMSG.pack(socket.AF_INET, 0, 0, 0, _RT_TABLE_MAIN, _RTPROT_BOOT, _RT_SCOPE_UNIVERSE, _RTN_UNICAST, 0)
    return Message(_RTM_NEWROUTE, rtmsg + _attr(_RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed))


def request(sock: socket.socket, messages: Iterable[Message]) -> None:
    """Send *messages* in one datagram and wait for every ack; the
    first refusal is raised as :class:`RtnlError` once all are answered (the kernel carries on with
    the next message after a refused one, so a caller rolls back the whole batch)."""
    data, pending = b"", {}
    for seq, msg in enumerate(messages, start=1):
        flags = _NLM_F_REQUEST | _NLM_F_ACK | (_NLM_F_CREATE | _NLM_F_EXCL if msg.create else 0)
        data += _NLMSGHDR.pack(_NLMSGHDR.size + len(msg.body), msg.kind, flags, seq, 0) + msg.body
        pending[seq] = msg
    sock.send(data)
    first_error = 0
    while pending:
        reply = sock.recv(65536)
        offset = 0
        while offset + _NLMSGHDR.size <= len(reply):
            length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(reply, offset)
            if kind == _NLMSG_ERROR and seq in pending:
                msg = pending.pop(seq)
                code = -struct.unpack_from("=i", reply, offset + _NLMSGHDR.size)[0]
                if code not in msg.tolerate:
                    first_error = first_error or code
            offset += max(_NLMSGHDR.size, (length + 3) & ~3)
    if first_error:
        raise RtnlError(first_error, os.strerror(first_error))


def open_socket() -> socket.socket:
    """A route netlink socket in the caller's namespace (``agent.netns.socket_in`` for another)."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)


def ifindex(sock: socket.socket, ifname: str) -> int:
    """Index of *ifname* in the namespace of *sock* (any socket: SIOCGIFINDEX resolves the name
    there); ENODEV as :class:`RtnlError` if there is none."""
    try:
        reply = fcntl.ioctl(sock.fileno(), _SIOCGIFINDEX, struct.pack("=16s24x", ifname.encode()))
    except OSError as exc:
        raise RtnlError(exc.errno or errno.ENODEV, f"{ifname}: {exc.strerror}") from None
    return int(struct.unpack_from("=16xi", reply)[0])
