"""One private userspace Open vSwitch (ovsdb-server + ovs-vswitchd), optionally inside a netns.

This machine has no OVS kernel module, and a userspace vswitchd creates a fixed ``ovs-netdev`` tap, so
each simulated host runs its own instance in its own namespace with its own run directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


def netns_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


class OvsInstance:
    def __init__(self, rundir: Path, netns: str | None = None) -> None:
        self.rundir = Path(rundir)
        self.netns = netns

    @property
    def db_sock(self) -> str:
        return str(self.rundir / "db.sock")

    @property
    def remote(self) -> str:
        return f"unix:{self.db_sock}"

    def env(self) -> dict[str, str]:
        d = str(self.rundir)
        return {**os.environ, "OVS_RUNDIR": d, "OVS_DBDIR": d, "OVS_LOGDIR": d}

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """Run an OVS utility (ovs-vsctl, ovs-ofctl, ovs-appctl) against this instance."""
        proc = subprocess.run([*netns_prefix(self.netns), *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        d = self.rundir
        self.run("ovsdb-tool", "create", str(d / "conf.db"), SCHEMA)
        self._start_ovsdb_server()
        self.run("ovs-vsctl", "--no-wait", "init")
        self._start_vswitchd()

    def _start_ovsdb_server(self) -> None:
        d = self.rundir
        self.run("ovsdb-server", str(d / "conf.db"), f"--remote=punix:{self.db_sock}",
                 "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                 f"--pidfile={d / 'ovsdb-server.pid'}", f"--log-file={d / 'ovsdb-server.log'}",
                 "--detach", "--no-chdir")

    def _start_vswitchd(self) -> None:
        d = self.rundir
        self.run("ovs-vswitchd", f"unix:{self.db_sock}", f"--pidfile={d / 'ovs-vswitchd.pid'}",
                 f"--log-file={d / 'ovs-vswitchd.log'}", "--detach", "--no-chdir")

    def restart_vswitchd(self, flow_restore_wait: bool = True) -> None:
        """Crash ovs-vswitchd (SIGKILL) and start it again, as an OVS upgrade or crash would, with
        other_config:flow-restore-wait set first like ovs-ctl does."""
        self._crash("ovs-vswitchd.pid")
        if flow_restore_wait:
            self.run("ovs-vsctl", "--no-wait", "set", "Open_vSwitch", ".",
                     "other_config:flow-restore-wait=true")
        self._start_vswitchd()

    def restart_ovsdb_server(self) -> None:
        """Crash ovsdb-server (SIGKILL) and start it again on the same database: ovs-vswitchd and the
        agent's OVSDB connection must reconnect by themselves."""
        self._crash("ovsdb-server.pid")
        self._start_ovsdb_server()

    def _crash(self, pidfile: str) -> None:
        """SIGKILL the daemon of *pidfile* and wait (up to 5 s) until it is gone."""
        pid = int((self.rundir / pidfile).read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.02)

    def pids(self) -> list[int]:
        out = []
        for name in ("ovs-vswitchd.pid", "ovsdb-server.pid"):
            try:
                out.append(int((self.rundir / name).read_text().strip()))
            except (OSError, ValueError):
                pass
        return out

    def stop(self) -> None:
        """Stop both daemons by pid file (never by process name: other runs share the machine)."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def flows(self, bridge: str) -> list[str]:
        """Flow lines without statistics, sorted: comparable before and after a restart."""
        out = self.run("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge)
        return sorted(line.strip() for line in out.splitlines() if "table=" in line or "priority" in line)


def _running(pid: int) -> bool:
    """False once *pid* has exited: gone, or a zombie its (adoptive) parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
