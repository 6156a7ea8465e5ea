"""``apic-mock leaf`` / ``python -m apic_mock.leaf``: help and clear errors on bad input, nothing created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_help_from_both_entry_points() -> None:
    for args in (("-m", "apic_mock.leaf", "--help"), ("-m", "apic_mock.cli", "leaf", "--help")):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr
        assert "simulated ACI leaf" in proc.stdout
        assert "--port eth1/N=IFACE" in proc.stdout


def test_bad_input_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    rundir = tmp_path / "run"
    base = ("-m", "apic_mock.leaf", "--node", "101", "--apic-url", "http://127.0.0.1:1", "--netns", "lfclitest",
            "--rundir", str(rundir))
    proc = run(*base, "--port", "eth1-1=x")
    assert proc.returncode == 2
    assert "expected eth1/N=INTERFACE" in proc.stderr
    proc = run(*base, "--poll-interval", "0")
    assert proc.returncode == 2
    assert "must be positive" in proc.stderr
    proc = run("-m", "apic_mock.leaf", "--apic-url", "http://127.0.0.1:1", "--netns", "x")
    assert proc.returncode == 2
    assert "--node" in proc.stderr
    assert not rundir.exists()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "lfclitest" not in netns
