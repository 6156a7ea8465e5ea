"""The bypass attempts of the policy matrix (tests/agent/test_bypass_matrix.py, tests/aci_e2e), and the
sniffers that tell whether a frame reached a container's port.

Each attempt is one UDP frame from an attacker's container to a target it may not reach, crafted as an
attacker would (testbed.rawframe writes it on a packet socket): to the broadcast MAC, to a multicast
MAC with a multicast IP, to a MAC nobody owns, to the gateway's MAC, with another member's source IP,
MAC, or both, to the target's MAC but the IP of a container the attacker may reach (a decoy for
the policy that judges by address); plus the plain unicast frame, the one policy obviously judges. A control frame on an
allowed path, sent after the attempts, tells when the attempts would have arrived if they were going
to: the check waits for it rather than sleeping.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from testbed.process import spawn_until_printed
from testbed.rawframe import UdpFrame

REPO = Path(__file__).resolve().parents[1]
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
MCAST_IP = "239.1.1.1"
MCAST_MAC = "01:00:5e:01:01:01"
UNKNOWN_MAC = "02:99:99:99:99:99"
ATTACKS = ("unicast", "broadcast_mac", "multicast", "unknown_mac", "gateway_mac", "spoofed_ip", "spoofed_mac",
           "spoofed_ip_and_mac", "decoy_ip")


@dataclass(frozen=True)
class Member:
    """A container as the attacks see it."""

    name: str
    ns: str
    ip: str
    mac: str


def attack_frames(attacker: Member, target: Member, other: Member, gateway_mac: str, tag: str,
                  decoy: Member | None = None) -> dict[str, UdpFrame]:
    """One frame per attack from *attacker* to *target*; *other* is whom the spoofed frames pretend to be
    (someone *target* accepts traffic from), *decoy* a container *attacker* may reach (its IP goes in
    the frame to *target*'s MAC; without one that attempt is left out). Payloads are ``tag:attack`` so
    a leak names itself."""
    a, t = attacker, target

    def frame(attack: str, dst_mac: str, dst_ip: str = t.ip, src_mac: str = a.mac, src_ip: str = a.ip) -> UdpFrame:
        return UdpFrame(src_mac, dst_mac, src_ip, dst_ip, f"{tag}:{attack}")

    frames = [
        frame("unicast", t.mac),
        frame("broadcast_mac", BROADCAST_MAC),
        frame("multicast", MCAST_MAC, MCAST_IP),
        frame("unknown_mac", UNKNOWN_MAC),
        frame("gateway_mac", gateway_mac),
        frame("spoofed_ip", t.mac, src_ip=other.ip),
        frame("spoofed_mac", t.mac, src_mac=other.mac),
        frame("spoofed_ip_and_mac", t.mac, src_mac=other.mac, src_ip=other.ip),
        *([frame("decoy_ip", t.mac, decoy.ip)] if decoy else []),
    ]
    return {f.payload.rsplit(":", 1)[1]: f for f in frames}


def send_frames(ns: str, frames: list[UdpFrame]) -> None:
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "testbed.rawframe", "send"],
                   input=json.dumps([asdict(f) for f in frames]), text=True, check=True, timeout=30,
                   cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


class Sniffer:
    """Every UDP payload to port 5000 that reaches a container's eth0 (from its start on)."""

    def __init__(self, member: Member, workdir: Path) -> None:
        self.member = member
        self.path = workdir / f"sniff-{member.name}-{secrets.token_hex(3)}.txt"
        self.proc = spawn_until_printed(["ip", "netns", "exec", member.ns, sys.executable, "-m", "testbed.rawframe",
                                         "sniff"], self.path, "ready", f"sniffer in {member.ns}", cwd=REPO,
                                        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def lines(self) -> list[str]:
        return self.path.read_text(errors="replace").splitlines()

    def seen(self, prefix: str) -> set[str]:
        """The attacks of the payloads starting with *prefix* that arrived."""
        return {line.rsplit(":", 1)[1] for line in self.lines() if line.startswith(prefix + ":")}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def control_arrives(sender: Member, receiver: Sniffer, tag: str, timeout: float = 10.0) -> bool:
    """Send a legitimate unicast frame from *sender* to *receiver* until it arrives (the first frame
    toward a new VXLAN peer may be lost while the underlay resolves), True once it did."""
    r = receiver.member
    frame = UdpFrame(sender.mac, r.mac, sender.ip, r.ip, f"{tag}:control")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        send_frames(sender.ns, [frame])
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            if "control" in receiver.seen(tag):
                return True
            time.sleep(0.05)
    return False


@dataclass(frozen=True)
class Case:
    """One cell of a matrix: who attacks whom, whom the spoofed frames pretend to be, who sends the
    allowed control frame to the target, and which containers no attempt may reach."""

    attacker: str
    target: str
    impersonated: str
    control_from: str
    protected: tuple[str, ...]
    decoy: str  # a container the attacker may reach


def leaked_attempts(label: str, case: Case, members: dict[str, Member], sniffers: dict[str, Sniffer],
                    gateway_mac: str) -> dict[str, set[str]]:
    """Send every attempt of *case*, wait for the control frame, and return what reached a protected
    container (name -> attacks; all empty when the datapath holds)."""
    m = members
    tag = f"{label}-{secrets.token_hex(3)}"
    frames = attack_frames(m[case.attacker], m[case.target], m[case.impersonated], gateway_mac, tag,
                           m[case.decoy])
    assert set(frames) == set(ATTACKS)
    send_frames(m[case.attacker].ns, list(frames.values()))
    if not control_arrives(m[case.control_from], sniffers[case.target], tag):
        raise AssertionError(f"{label}: the allowed control frame {case.control_from} -> {case.target} "
                             "did not arrive")
    time.sleep(0.3)  # the attempts went out before the control; give a reordered one a moment
    return {name: sniffers[name].seen(tag) - {"control"} for name in case.protected}

