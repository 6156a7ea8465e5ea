"""OVSDB and OpenFlow driver behaviour against a private Open vSwitch (see ovs_driver_probe.py)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from testbed.cluster import REPO, sh
from tests.agent.conftest import requires_datapath

pytestmark = requires_datapath


def test_bridge_ports_bundles_rounds_and_flow_restore_wait(tmp_path: Path) -> None:
    ns = "ag" + secrets.token_hex(3) + "o"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        probe = [sys.executable, "-m", "tests.agent.ovs_driver_probe", str(tmp_path / "ovs")]
        proc = subprocess.run(["ip", "netns", "exec", ns, *probe], cwd=REPO, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    finally:
        sh("ip", "netns", "del", ns, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["connected"] is True
    assert out["bridge"] == {"datapath_type": "netdev", "fail_mode": "secure", "protocols": '[OpenFlow13]'}
    assert out["controller"] == f"unix:{tmp_path / 'ovs' / 'openflow.sock'}"
    assert out["datapath_id"] == '"00000000000000b0"', "the datapath id the controller accepts"
    assert out["ports"]["int0"] == [20, "internal", {}, {"k": "v"}]
    assert out["ports"]["tun0"] == [1, "vxlan", {"key": "flow", "remote_ip": "flow"}, {}]
    assert out["bad_bundle"].startswith("rejected")
    assert out["flows_after_bad_bundle"] == 0, "a rejected bundle must leave nothing behind"
    assert out["after_round_switch"] == [[5, 2], [5, 2]], "old round deleted, shared flow re-cookied"
    assert out["after_strict_delete"] == 1
    assert out["frw_set"] is True
    assert out["frw_cleared"] is False
