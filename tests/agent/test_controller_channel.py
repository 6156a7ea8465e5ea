"""The bridge's controller channel on a real host: a foreign process (root, or another user) that
connects to the agent's controller socket can neither take the bridge's place nor change its flows.

The agent listens on a root-only unix socket and accepts only the datapath id it gave its bridge;
the attacker here is a separate process doing what a switch would (HELLO, FEATURES_REPLY with a
forged datapath id), then what a controller would (a FlowMod deleting every flow, a packet-out),
plus barrier replies and errors to confuse the agent's waiters.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from agent.ovs import ofchannel
from agent.ovs.encoder import FlowModEncoder
from agent.ovs.flow import Flow, Match
from agent.ovs.ofcontroller import datapath_id_for
from agent.state import DesiredState, Endpoint, Network
from testbed.cluster import SimHost
from testbed.netcheck import ping
from testbed.waiting import eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

NET = Network("t1", "n", "vxlan", "10.16.0.0/24", vni=9016)

_INTRUDER = """
import socket, struct, sys
path, dpid, flood = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except PermissionError:
    print("refused at connect")
    sys.exit(0)
s.settimeout(10)
def msg(t, xid, body=b""):
    return struct.pack("!BBHI", 4, t, 8 + len(body), xid) + body
out = [msg(0, 1)]                                                # HELLO
out += [msg(21, 0x10000000 + i) for i in range(64)]             # barrier replies for guessed xids
out += [msg(1, 0x10000000 + i, struct.pack("!HH", 1, 1)) for i in range(64)]  # errors for them
out.append(msg(6, 2, struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0, 0)))  # FEATURES_REPLY, forged datapath
out.append(flood)                                                # FlowMod: delete every flow
s.sendall(b"".join(out))
got = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
except OSError as exc:
    print("error", exc)
print("closed by the agent after", len(got), "bytes")
"""


def _intruder(host: SimHost, dpid: int, as_nobody: bool = False) -> str:
    delete_all = FlowModEncoder().flow_mod(Flow(0, 0, Match()), 3, table=ofchannel.OFPTT_ALL)
    cmd = [sys.executable, "-c", _INTRUDER, str(host.controller_sock), str(dpid), delete_all.hex()]
    if as_nobody:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return (proc.stdout + proc.stderr).strip()


def _flows(host: SimHost) -> list[str]:
    return sorted(re.sub(r"(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, ?", "", line)
                  for line in host.flows())


def test_a_foreign_process_can_neither_take_over_nor_disturb_the_flows(env: ClusterEnv) -> None:
    a, b = env.pair(NET, "10.16.0.1", "10.16.0.2")
    h1 = env.cluster.hosts[0]
    sock = h1.controller_sock
    mode = os.stat(sock)
    assert (oct(mode.st_mode & 0o777), mode.st_uid) == ("0o600", 0)
    assert h1.ovs.run("ovs-vsctl", "get-controller", h1.bridge).strip() == f"unix:{sock}"
    expected = datapath_id_for(h1.name, h1.bridge)
    assert h1.ovs.run("ovs-vsctl", "get", "Bridge", h1.bridge, "datapath_id").strip() == f'"{expected:016x}"'
    before = _flows(h1)

    assert _intruder(h1, expected, as_nobody=True) == "refused at connect", "another user cannot even connect"
    for forged in (expected + 1, 0):
        seen = _intruder(h1, forged)
        assert seen.startswith("closed by the agent after"), seen
    log = env.cluster.agent_log(h1)
    assert log.count("refused switch") >= 2, log[-2000:]

    _, info = h1.get("/inspect/driver")
    assert info["switch_connected"] is True, "the bridge's own connection stays"
    assert _flows(h1) == before, "no flow changed"
    assert ping(a, "10.16.0.2")
    # and the agent still programs its bridge: a's endpoint removed, its flows go
    env.apply(DesiredState(networks=(NET,), endpoints=(Endpoint("b", "t1", "n", "10.16.0.2", "h2", netns=b),)))
    eventually(lambda: not any("10.16.0.1" in f for f in h1.flows()), 10, "a's flows removed by the agent")


def test_the_bridge_itself_is_root_only(env: ClusterEnv) -> None:
    """OVS's own management socket of the bridge (what ovs-ofctl uses) is not open to other users either."""
    h1 = env.cluster.hosts[0]
    mgmt = next(h1.ovs.rundir.glob(f"{h1.bridge}.mgmt"))
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                           "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
                           str(mgmt)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "PermissionError" in proc.stderr
