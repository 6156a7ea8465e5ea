"""``SimLeaf``: start, wire and stop a simulated leaf from Python (tests, the demo).

::

    leaf = SimLeaf(node_id=101, apic_url=apic.url, ca_file=apic.ca_file).start()
    leaf.connect("eth1/1", peer_netns="h1", peer_ifname="trunk0")   # a host's trunk into eth1/1
    leaf.wait_synced()            # flows reflect the APIC as of this call
    leaf.endpoints()              # learnt endpoints
    leaf.stop()                   # process, OVS, namespace, run directory: all gone

The leaf runs as its own process (``python -m apic_mock.leaf``), so it keeps running in the
background of a test and survives nothing it should not: ``stop()`` terminates it and then runs the
same idempotent teardown itself, which also covers a crashed leaf.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from apic_mock.leaf.switch import LeafSwitch, ip, netns_exists, ovs_port_name, teardown

REPO = Path(__file__).resolve().parents[2]


class SimLeaf:
    """One simulated leaf: node ``node_id``, in namespace ``netns`` (default ``lf`` + random hex)."""

    def __init__(self, node_id: int = 101, *, apic_url: str, username: str = "admin", password: str = "password",
                 ca_file: str | None = None, netns: str | None = None, rundir: Path | None = None,
                 ports: dict[str, str] | None = None, pod: int = 1, poll_interval: float = 0.5,
                 endpoint_age: float = 900.0, subscribe: bool = True, log_level: str = "info") -> None:
        self.node_id = node_id
        self.apic_url = apic_url
        self.username = username
        self.password = password
        self.ca_file = ca_file
        self.netns = netns or f"lf{secrets.token_hex(3)}"
        self._own_netns = netns is None
        self.rundir = Path(rundir) if rundir else Path("/tmp") / f"{self.netns}-leaf{node_id}"
        self.ports = dict(ports or {})
        self.pod = pod
        self.poll_interval = poll_interval
        self.endpoint_age = endpoint_age
        self.subscribe = subscribe
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self.switch = LeafSwitch(self.netns, self.rundir)
        self._peers: list[tuple[str, str | None]] = []

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.rundir.parent / f"{self.rundir.name}.log"

    def start(self, timeout: float = 30) -> SimLeaf:
        """Start the leaf process and wait for its first completed cycle."""
        for fabric in self.ports:
            ovs_port_name(fabric)  # validates before anything is created
        self.rundir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "apic_mock.leaf", "--node", str(self.node_id), "--pod", str(self.pod),
               "--apic-url", self.apic_url, "--apic-user", self.username, "--netns", self.netns,
               "--rundir", str(self.rundir), "--poll-interval", str(self.poll_interval),
               "--endpoint-age", str(self.endpoint_age), "--log-level", self.log_level]
        if self.ca_file:
            cmd += ["--apic-ca", self.ca_file]
        if not self.subscribe:
            cmd.append("--no-subscribe")
        for fabric, iface in self.ports.items():
            cmd += ["--port", f"{fabric}={iface}"]
        env = {**os.environ, "APIC_PASSWORD": self.password,
               "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=REPO, env=env)
        deadline = time.monotonic() + timeout
        while self.status().get("cycles", 0) < 1:
            if self.process.poll() is not None:
                raise RuntimeError(f"leaf {self.node_id} exited: {self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"leaf {self.node_id} not running after {timeout}s: {self.log()[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove everything it created."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        for name, netns in self._peers:
            ip(*(["-n", netns] if netns else []), "link", "del", name, check=False)
        self._peers.clear()
        teardown(self.netns, self.rundir)
        if self._own_netns and netns_exists(self.netns):  # e.g. the process died before recording it
            ip("netns", "del", self.netns, check=False)
        self.log_file.unlink(missing_ok=True)

    def __enter__(self) -> SimLeaf:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- wiring ----------------------------------------------------------------------------------
    def connect(self, fabric_port: str, peer_netns: str | None, peer_ifname: str) -> str:
        """Create a veth from fabric port ``fabric_port`` to ``peer_ifname`` in ``peer_netns`` (None: the
        root namespace), both ends up with TX checksum offload off (TCP through the userspace datapath
        needs it), and attach it. Returns the leaf-side interface name (``eth1-N``)."""
        name = ovs_port_name(fabric_port)
        peer = ["peer", "name", peer_ifname] + (["netns", peer_netns] if peer_netns else [])
        ip("link", "add", name, "netns", self.netns, "type", "veth", *peer)
        self._peers.append((peer_ifname, peer_netns))
        prefix = ["ip", "netns", "exec", peer_netns] if peer_netns else []
        subprocess.run([*prefix, "ethtool", "-K", peer_ifname, "tx", "off"], capture_output=True, check=False)
        ip(*(["-n", peer_netns] if peer_netns else []), "link", "set", peer_ifname, "up")
        self.add_port(fabric_port, name)
        return name

    def adopt(self, fabric_port: str, iface: str, from_netns: str | None = None) -> None:
        """Move an existing interface (e.g. the root end of a host's trunk veth, taken off its Linux
        bridge) from ``from_netns`` (None: the root namespace) into the leaf and attach it."""
        ovs_port_name(fabric_port)
        where = ["-n", from_netns] if from_netns else []
        ip(*where, "link", "set", iface, "nomaster", check=False)
        ip(*where, "link", "set", iface, "netns", self.netns)
        self.add_port(fabric_port, iface)

    def add_port(self, fabric_port: str, iface: str) -> None:
        """Attach an interface already in the leaf namespace as ``fabric_port``."""
        self.switch.add_port(fabric_port, iface)

    def remove_port(self, fabric_port: str) -> None:
        self.switch.remove_port(fabric_port)

    # -- observation -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.rundir / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_synced(self, timeout: float = 10) -> dict[str, Any]:
        """Wait until the installed flows come from an APIC read that started after this call."""
        since = time.time()
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status.get("read_at", 0) >= since:
                return status
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"leaf {self.node_id} is not running: {self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"leaf {self.node_id} not synced within {timeout}s "
                                   f"(apic_error={status.get('apic_error')})")
            time.sleep(0.05)

    def endpoints(self) -> list[dict[str, Any]]:
        """Learnt endpoints: mac, ip, port, vlan, epg."""
        return list(self.status().get("endpoints", []))

    def flows(self) -> list[str]:
        return self.switch.flows()

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""
