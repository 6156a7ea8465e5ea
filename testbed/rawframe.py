"""Hand-made Ethernet frames, for tests that attack the datapath (tests/agent/test_bypass_matrix.py).

An attacker controls every byte of the frames its container sends: destination MAC (broadcast,
multicast, a MAC nobody owns, the gateway's), source MAC and source IP. The kernel's own stack never
sends such frames, so this module writes them on an AF_PACKET socket. The receiving side is a sniffer
on the container's interface, also AF_PACKET: it sees every frame the switch delivers to the port,
whatever its destination MAC and whether or not the kernel would accept it, which is the property
under test ("nothing reaches an endpoint port without passing its policy").

Run inside a container namespace::

    ip netns exec NS python3 -m testbed.rawframe send --iface eth0 < frames.json
    ip netns exec NS python3 -m testbed.rawframe sniff --iface eth0 --port 5000 > seen.txt

``send`` reads a JSON list of ``{"src_mac", "dst_mac", "src_ip", "dst_ip", "payload"}`` (UDP from and to
port 5000 unless ``"port"`` is given); ``sniff`` prints ``ready`` once bound, then the payload of every
received IPv4/UDP frame to the port, one per line.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
from dataclasses import dataclass

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
UDP_PORT = 5000


@dataclass(frozen=True)
class UdpFrame:
    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    payload: str
    port: int = UDP_PORT

    def encode(self) -> bytes:
        data = self.payload.encode()
        udp = struct.pack("!HHHH", self.port, self.port, 8 + len(data), 0) + data  # checksum 0: none (IPv4)
        ttl = 64
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, ttl, socket.IPPROTO_UDP, 0,
                             socket.inet_aton(self.src_ip), socket.inet_aton(self.dst_ip))
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return _mac(self.dst_mac) + _mac(self.src_mac) + struct.pack("!H", ETH_P_IP) + header + udp


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send(iface: str, frames: list[UdpFrame]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, 0))
        for frame in frames:
            sock.send(frame.encode())


def udp_payload(frame: bytes, port: int) -> bytes | None:
    """The UDP payload of an untagged IPv4 frame to *port*, else None."""
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP or frame[23] != socket.IPPROTO_UDP:
        return None
    ihl = (frame[14] & 0x0F) * 4
    udp = frame[14 + ihl:]
    if len(udp) < 8 or struct.unpack("!H", udp[2:4])[0] != port:
        return None
    return udp[8:]


def sniff(iface: str, port: int) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    print("ready", flush=True)
    while True:
        frame, addr = sock.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING:
            continue
        payload = udp_payload(frame, port)
        if payload is not None:
            print(payload.decode(errors="replace").strip(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.rawframe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_send = sub.add_parser("send", help="send the JSON list of frames on stdin")
    p_send.add_argument("--iface", default="eth0")
    p_sniff = sub.add_parser("sniff", help="print the payload of every UDP frame to --port")
    p_sniff.add_argument("--iface", default="eth0")
    p_sniff.add_argument("--port", type=int, default=UDP_PORT)
    args = parser.parse_args(argv)
    if args.cmd == "send":
        send(args.iface, [UdpFrame(**f) for f in json.load(sys.stdin)])
    else:
        sniff(args.iface, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
