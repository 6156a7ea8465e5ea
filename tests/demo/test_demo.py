"""``scripts/demo``, the README's main job, run as a user runs it: the real command, the whole ACI stack.

The walkthrough narrates each traffic check as ``<src> -> <dst> <what>  allowed|blocked  as expected``
and exits 1 when an outcome differs from the contracts; these tests check the exit status, that the
narrated outcomes are the ones the contracts imply, and that nothing of the run is left behind
(namespaces and links with the cluster's prefix, its files, its processes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from testbed.bgp_cluster import missing_bgp_prerequisites
from testbed.cluster import REPO, leftovers
from testbed.cluster.prereq import missing_prerequisites, requires
from testbed.netcheck import ping

RECORD = Path("/tmp/contiv-demo.json")
# (check, narrated outcome): what db-policy allows (rule 1 icmp from web, then rule 2 tcp 8000 from web)
OUTCOMES = [
    ("web-1 -> web-2 ping", "allowed"),
    ("web-1 -> db-1 ping", "allowed"),
    ("batch-1 -> db-1 ping", "blocked"),
    ("batch-1 -> web-1 ping", "blocked"),
    ("web-1 -> db-1 tcp 8000", "blocked"),  # before rule 2
    ("web-1 -> db-1 tcp 8000", "allowed"),  # after rule 2
    ("web-1 -> db-1 tcp 8001", "blocked"),
    ("web-2 -> db-1 tcp 8000", "allowed"),
    ("batch-1 -> db-1 tcp 8000", "blocked"),
    *((f"{name} -> 10.50.0.254 ping", "allowed") for name in ("web-1", "web-2", "db-1", "batch-1")),
]

pytestmark = requires(missing_prerequisites())


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    # The suite is already set up, and the demo runs with the suite's own interpreter (scripts/test's
    # virtual environment, or whichever runs these tests).
    env = {**os.environ, "CONTIV_DEMO_SETUP": "0", "CONTIV_PYTHON": sys.executable}
    return subprocess.run([str(REPO / "scripts" / "demo"), *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd="/")


def narrated(out: str) -> list[tuple[str, str]]:
    """The verdict lines in order, as (check, outcome), failing on any UNEXPECTED one."""
    found = re.findall(r"^  (\S+ -> \S+ (?:ping|tcp \d+))\s+(allowed|blocked)\s+(as expected|UNEXPECTED)", out, re.M)
    assert all(mark == "as expected" for _, _, mark in found), out
    return [(check, outcome) for check, outcome, _ in found]


def processes_mentioning(prefix: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and prefix in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def prefix_of(out: str) -> str:
    m = re.search(r"simulated cluster prefix (ac[0-9a-f]+)", out)
    assert m, out
    return m[1]


def test_walkthrough_shows_the_contracts_and_leaves_nothing_behind() -> None:
    assert not RECORD.exists(), "a kept demo is running; scripts/demo down first"
    run = demo()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    prefix = prefix_of(out)
    assert re.search(r"^acme\s+apic$", out, re.M), "tenant ls marks the APIC's tenant"
    assert narrated(out) == OUTCOMES
    assert '"state": "synced"' in out
    assert re.search(r"vzEntry\s+uni/tn-acme/flt-filt-db-policyFrmweb/e-entry-ip-tcp-8000", out)
    assert len(re.findall(r'-> \{"result": "success", "msg": "ok", "ip": "10\.50\.0\.\d+", "vlan": "\d+"\}', out)) == 4
    assert f"left behind with prefix {prefix}: nothing" in out
    pids = [int(p) for p in re.search(r"stopped processes ([\d ]+)", out)[1].split()]  # type: ignore[index]
    assert len(pids) >= 6  # apic_mock, aci-gw, netmaster, leaf, 2 agents (and the HTTP servers)
    assert alive(pids) == []
    assert leftovers(prefix) == []
    assert processes_mentioning(prefix) == []


def test_keep_leaves_it_running_and_down_removes_it() -> None:
    assert not RECORD.exists(), "a kept demo is running; scripts/demo down first"
    run = demo("--keep")
    out = run.stdout + run.stderr
    try:
        assert run.returncode == 0, out[-6000:]
        prefix = prefix_of(out)
        assert RECORD.exists()
        assert "scripts/demo down" in out
        # Still up after the demo process ended: web-1 reaches db-1 through the leaf.
        db_ip = re.search(r"db-1\s+EPG db\s+on h2 \(netns \S+\): ip (\S+)", out)[1]  # type: ignore[index]
        assert ping(f"{prefix}cweb-1", db_ip, count=3)
        assert processes_mentioning(prefix) != []
    finally:
        gone = demo("down")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not RECORD.exists()
    assert leftovers(prefix) == []
    assert processes_mentioning(prefix) == []
    again = demo("down")
    assert again.returncode == 0
    assert "no demo is running" in again.stdout


def test_services_walkthrough_runs_and_leaves_nothing() -> None:
    """``scripts/demo --services``: every narrated check ok (spread, a provider removed without breaking
    another's connection, names), exit 0, and nothing of the run left behind (the demo checks its own
    cluster prefix last)."""
    result = demo("--services")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    checks = re.findall(r"^  (.+?)\s+(ok|FAILED)  ", out, re.M)
    assert len(checks) == 8, out
    assert all(verdict == "ok" for _, verdict in checks), out


@requires(missing_bgp_prerequisites())
def test_bgp_walkthrough_routes_through_the_tor_and_leaves_nothing_behind() -> None:
    run = demo("--bgp")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    verdicts = re.findall(r"^  (\S+ -> \S+) ping  (reached|unreachable)\s+(as expected|UNEXPECTED)$", out, re.M)
    assert [(c, o) for c, o, _ in verdicts] == [
        ("a -> b", "reached"), ("b -> a", "reached"), ("a -> server", "reached"),  # over BGP routes
        ("a -> b", "unreachable"), ("a -> server", "unreachable"),  # h1's Bgp object removed
        ("a -> b", "reached"), ("a -> server", "reached"),  # restored
    ]
    assert all(mark == "as expected" for _, _, mark in verdicts)
    assert re.search(r"^B>\* 10\.60\.0\.1/32 .* via 50\.1\.1\.1, eth0", out, re.M), "a's /32 at the ToR, via h1"
    assert '"neighborStatus": "Established"' in out
    prefix = re.search(r"simulated cluster prefix (as[0-9a-f]+)", out)[1]  # type: ignore[index]
    assert leftovers(prefix) == []
    assert processes_mentioning(prefix) == []
