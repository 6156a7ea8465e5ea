"""A simulated multi-host cluster on one machine: hosts and containers are network namespaces.

Layout for a cluster with prefix P (``ag`` + a random suffix, so concurrent runs never collide and
cleanup can find everything by name):

- root namespace: Linux bridges ``P-ul`` (underlay: VTEP addresses, VXLAN rides here) and ``P-tr``
  (802.1Q trunk between hosts, VLAN networks), each host attached with one veth per bridge; a host
  given two trunk links (``Cluster(trunks={"h1": 2})``) has both on ``P-tr`` and the agent bonds them
  (active-backup: the backup link's copies of floods are dropped, so one bridge makes no loop);
- host i: namespace ``Phi`` with its own ovsdb-server/ovs-vswitchd (userspace datapath, run dir under
  /tmp/P/hi), a ``brphy`` OVS bridge holding the VTEP address on the underlay veth ``ul0`` (userspace
  VXLAN must route through an OVS bridge), the trunk veth ``trunk0`` handed to the agent as its VLAN
  uplink, and an agent process fed by a state file;
- containers: namespaces ``Pc<name>``, plumbed by the agent of the host their endpoint names;
- on request (``Cluster.outside_server()``), a server outside the cluster: namespace ``Psrv`` on the
  underlay bridge at ``OUTSIDE_SERVER_IP``, a machine no agent knows (host access and external SNAT
  are tested against it: it sees whatever source address a host gives the traffic).

Everything created is recorded in /tmp/P/cluster.json, so ``python -m testbed.cluster down`` can clean up
after a crashed run as well.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.state import DesiredState
from apic_mock.leaf.ovs import OvsInstance

REPO = Path(__file__).resolve().parents[2]
UNDERLAY_NET = "192.168.77"
OUTSIDE_SERVER_IP = f"{UNDERLAY_NET}.200"  # hosts are .1, .2, ...: far from them
# "as": agents following a netmaster (tests/agent_sync); "fe": front ends; "ac": ACI mode (tests/aci_agent, aci_e2e)
CLUSTER_PREFIXES = ("ag", "as", "fe", "ac")


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def in_ns(ns: str, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 5) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


@dataclass
class SimHost:
    name: str  # agent host label, e.g. "h1"
    netns: str
    rundir: Path
    vtep_ip: str
    ovs: OvsInstance
    uplinks: tuple[str, ...] = ("trunk0",)  # trunk interfaces in the host namespace
    trunk_root_ends: tuple[str, ...] = ()  # their peers on the root namespace's trunk bridge
    agent: subprocess.Popen[bytes] | None = None
    bridge: str = "contivbr"

    @property
    def state_file(self) -> Path:
        return self.rundir / "state.json"

    @property
    def controller_sock(self) -> Path:
        """The agent's OpenFlow controller socket (its default: in OVS's run directory)."""
        return self.ovs.rundir / f"contiv-{self.bridge}.sock"

    @property
    def inspect_sock(self) -> str:
        return str(self.rundir / "agent.sock")

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5) -> tuple[int, Any]:
        """A call to the agent's local API (inspect, and the endpoint API with netmaster sync)."""
        conn = _UnixConnection(self.inspect_sock, timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {})
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        ctype = resp.getheader("Content-Type", "")
        return resp.status, json.loads(body) if ctype.startswith("application/json") else body.decode()

    def flows(self) -> list[str]:
        return self.ovs.flows(self.bridge)


@dataclass
class Cluster:
    n_hosts: int = 2
    prefix: str = field(default_factory=lambda: "ag" + secrets.token_hex(2))
    hosts: list[SimHost] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)  # other processes to kill on cleanup (e.g. a netmaster)
    trunks: dict[str, int] = field(default_factory=dict)  # host name -> trunk links (default 1)

    @property
    def root(self) -> Path:
        return Path("/tmp") / self.prefix

    def _record(self) -> None:
        data = {"prefix": self.prefix, "hosts": [h.name for h in self.hosts],
                "agents": [h.agent.pid for h in self.hosts if h.agent], "containers": self.containers,
                "pids": self.pids}
        (self.root / "cluster.json").write_text(json.dumps(data))

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self, start_agents: bool = True) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=False)
        self._record()
        p = self.prefix
        for br in (f"{p}ul", f"{p}tr"):
            sh("ip", "link", "add", br, "type", "bridge")
            sh("ip", "link", "set", br, "up")
        for i in range(1, self.n_hosts + 1):
            self.hosts.append(self._host(i))
            self._record()
        if start_agents:
            for host in self.hosts:
                self.start_agent(host)
        return self

    def _host(self, i: int) -> SimHost:
        p = self.prefix
        ns = f"{p}h{i}"
        sh("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        n_trunks = self.trunks.get(f"h{i}", 1)
        trunks = [(f"{p}t{i}" + ("" if k == 0 else f"x{k}"), f"trunk{k}", f"{p}tr") for k in range(n_trunks)]
        for root_if, ns_if, bridge in ((f"{p}u{i}", "ul0", f"{p}ul"), *trunks):
            sh("ip", "link", "add", root_if, "type", "veth", "peer", "name", ns_if, "netns", ns)
            sh("ip", "link", "set", root_if, "master", bridge, "up")
            in_ns(ns, "ip", "link", "set", ns_if, "up")
        rundir = self.root / f"h{i}"
        ovs = OvsInstance(rundir / "ovs", ns)
        ovs.start()
        vtep = f"{UNDERLAY_NET}.{i}"
        ovs.run("ovs-vsctl", "add-br", "brphy", "--", "set", "bridge", "brphy", "datapath_type=netdev",
                "--", "add-port", "brphy", "ul0")
        in_ns(ns, "ip", "addr", "add", f"{vtep}/24", "dev", "brphy")
        in_ns(ns, "ip", "link", "set", "brphy", "up")
        return SimHost(f"h{i}", ns, rundir, vtep, ovs, tuple(t[1] for t in trunks), tuple(t[0] for t in trunks))

    def state_source_args(self, host: SimHost) -> list[str]:
        """Where the agent of *host* gets its state: a state file here (subclasses: netmaster)."""
        if not host.state_file.exists():
            DesiredState(hosts=()).save(host.state_file)
        return ["--state-file", str(host.state_file)]

    def start_agent(self, host: SimHost, extra: tuple[str, ...] = ()) -> None:
        log = open(host.rundir / "agent.log", "ab")  # noqa: SIM115 (lives as long as the process)
        cmd = ["ip", "netns", "exec", host.netns, sys.executable, "-m", "agent",
               "--host-label", host.name, "--ovsdb", host.ovs.remote, "--bridge", host.bridge,
               "--vtep-ip", host.vtep_ip, "--vlan-uplinks", ",".join(host.uplinks),
               *self.state_source_args(host), "--inspect", f"unix:{host.inspect_sock}",
               "--verify-interval", "1", *extra]
        host.agent = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=REPO,
                                      env={**os.environ, "PYTHONPATH": str(REPO)})
        log.close()
        self._record()
        self.wait_agent(host)

    def wait_agent(self, host: SimHost, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.agent is not None and host.agent.poll() is not None:
                raise RuntimeError(f"agent {host.name} exited: {self.agent_log(host)[-2000:]}")
            try:
                status, _ = host.get("/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"agent {host.name} not healthy: {self.agent_log(host)[-2000:]}")

    def kill_agent(self, host: SimHost) -> None:
        """SIGKILL, as a crash would: nothing gets to clean up."""
        if host.agent is not None:
            host.agent.send_signal(signal.SIGKILL)
            host.agent.wait(10)
            host.agent = None

    def agent_log(self, host: SimHost) -> str:
        try:
            return (host.rundir / "agent.log").read_text(errors="replace")
        except OSError:
            return ""

    def down(self) -> None:
        down(self.prefix)

    def __enter__(self) -> Cluster:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()

    def outside_server(self) -> str:
        """A namespace outside the cluster, on the hosts' underlay at ``OUTSIDE_SERVER_IP`` (created
        once; idempotent): reachable from every host's underlay address, unknown to every agent, with
        no route to any container subnet, so a reply to a container's own address cannot come back
        unless a host translated it. Its name is the prefix + ``srv``, so ``down`` removes it."""
        ns, root_if = f"{self.prefix}srv", f"{self.prefix}s"
        if ns in sh("ip", "netns", "list").stdout.split():
            return ns
        sh("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", root_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", root_if, "master", f"{self.prefix}ul", "up")
        in_ns(ns, "ip", "addr", "add", f"{OUTSIDE_SERVER_IP}/24", "dev", "eth0")
        # The hosts read the underlay through OVS's userspace datapath, which never completes a
        # checksum left to offload: without this, TCP from the server arrives with a bad checksum.
        in_ns(ns, "ethtool", "-K", "eth0", "tx", "off")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        return ns

    # -- containers and state -------------------------------------------------------------------

    def container(self, name: str) -> str:
        ns = f"{self.prefix}c{name}"
        sh("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        self.containers.append(ns)
        self._record()
        return ns

    def remove_container(self, ns: str) -> None:
        sh("ip", "netns", "del", ns, check=False)
        if ns in self.containers:
            self.containers.remove(ns)
            self._record()

    def apply(self, state: DesiredState, timeout: float = 20) -> None:
        """Give every agent the same state and wait until all have applied its revision."""
        for host in self.hosts:
            state.save(host.state_file)
        deadline = time.monotonic() + timeout
        for host in self.hosts:
            while True:
                _, info = host.get("/inspect/driver")
                if info["revision"] == state.revision:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{host.name} did not apply revision {state.revision}: "
                                       f"{self.agent_log(host)[-3000:]}")
                time.sleep(0.05)


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def down(prefix: str) -> None:
    """Remove everything of the cluster with *prefix*: agents, OVS daemons, namespaces, links, files.

    Works from the record file and from names alone, so it also cleans up after a crashed run."""
    if not prefix.startswith(CLUSTER_PREFIXES) or len(prefix) < 4:
        raise ValueError(f"refusing to clean up prefix {prefix!r}")
    root = Path("/tmp") / prefix
    record: dict[str, Any] = {}
    try:
        record = json.loads((root / "cluster.json").read_text())
    except (OSError, ValueError):
        pass
    for pid in record.get("agents", []) + record.get("pids", []):
        _kill_pid(pid)
    if root.exists():
        for pidfile in root.glob("*/ovs/*.pid"):  # hosts h1.., and the ACI leaf
            try:
                _kill_pid(int(pidfile.read_text().strip()))
            except (OSError, ValueError):
                pass
    for ns in sh("ip", "netns", "list", check=False).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(prefix):
            # what still runs inside (a BGP daemon outliving its agent, a ToR's FRR) would outlive the
            # namespace's name: end it first
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                _kill_pid(int(pid))
            sh("ip", "netns", "del", name, check=False)
    links = sh("ip", "-o", "link", "show", check=False).stdout.splitlines()
    for line in links:
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(prefix):
            sh("ip", "link", "del", name, check=False)
    _unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """Lazily unmount whatever is mounted below *root*, deepest first: podman's overlay storage driver
    bind-mounts its directory onto itself and leaves it mounted when podman exits."""
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(set(points), key=len, reverse=True):
        sh("umount", "-l", point, check=False)


def leftovers(prefix: str) -> list[str]:
    """Anything still carrying *prefix* (used by tests to prove cleanup is complete)."""
    found = [f"netns {n.split(' ')[0]}" for n in sh("ip", "netns", "list").stdout.splitlines()
             if n.startswith(prefix)]
    links = [line.split(":")[1].strip() for line in sh("ip", "-o", "link", "show").stdout.splitlines()]
    found += [f"link {name}" for name in links if name.startswith(prefix)]
    if (Path("/tmp") / prefix).exists():
        found.append(f"dir /tmp/{prefix}")
    return found
