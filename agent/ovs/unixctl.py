"""ovs-vswitchd's control socket (what ``ovs-appctl`` talks to), and the one command the agent needs
from it: purging the userspace datapath's cached flows after the OpenFlow tables changed.

Why the agent purges (docs/pipeline.md, "Datapath flow cache"): after an OpenFlow change, OVS's
revalidators re-translate every cached datapath flow (megaflow) and, when only its actions changed,
modify it in place. The userspace (``netdev``) datapath of OVS 3.1 applies such a modify to the
megaflow that its classifier finds first for the flow's *packet key* (``flow_put_on_pmd`` looks the
flow up by key, not by its id), and megaflows with different masks overlap there. The new actions
can then land on another, wider megaflow while the revalidated one keeps its old actions, and the
revalidator, which compares with the actions it believes it installed, never looks at it again. A
pod that policy now isolates kept being reached through such a stale "allow" megaflow for as long
as traffic kept it alive (docs/kubernetes.md, "Known issue (fixed)"). Purging after every change
leaves only megaflows translated from the current tables, for which a misdirected modify is harmless
(two megaflows that both match a packet key translate it alike).

The protocol is JSON-RPC 1.0 over a unix socket (``<rundir>/ovs-vswitchd.<pid>.ctl``), one request
per connection, the reply a single JSON object with ``result`` or ``error``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path


class UnixctlError(RuntimeError):
    """The control socket could not be reached, or the command failed (the message says which)."""


def vswitchd_socket(rundir: str | Path) -> Path:
    """The control socket of the ovs-vswitchd whose pid file is in *rundir* (its current process:
    a restarted vswitchd has a new pid and socket)."""
    pidfile = Path(rundir) / "ovs-vswitchd.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError) as exc:
        raise UnixctlError(f"no ovs-vswitchd pid in {pidfile}: {exc}") from None
    return Path(rundir) / f"ovs-vswitchd.{pid}.ctl"


def call(path: str | Path, method: str, *params: str, timeout: float = 10.0) -> str:
    """Run one command (``ovs-appctl -t PATH METHOD PARAMS...``) and return its output."""
    request = json.dumps({"method": method, "params": list(params), "id": 0}).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(request)
            buf = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise UnixctlError(f"{path}: connection closed before the reply to {method}")
                buf += chunk
                try:
                    reply = json.loads(buf)
                except ValueError:
                    continue  # the reply is not complete yet
                break
    except OSError as exc:
        raise UnixctlError(f"{path}: {method}: {exc}") from None
    if reply.get("error") is not None:
        raise UnixctlError(f"{method}: {reply['error']}")
    return str(reply.get("result") or "")


class DatapathPurger:
    """Purges the cached datapath flows of the ovs-vswitchd in *rundir* (``revalidator/purge``), with
    the revalidators paused meanwhile: in OVS before 3.3 the purge does not pause them itself and
    races with a dump in progress (OVS commit bd86266ea, "Pause revalidators when purging")."""

    def __init__(self, rundir: str | Path, timeout: float = 10.0) -> None:
        self.rundir = Path(rundir)
        self.timeout = timeout

    def purge(self) -> None:
        path = vswitchd_socket(self.rundir)
        call(path, "revalidator/pause", timeout=self.timeout)
        try:
            call(path, "revalidator/purge", timeout=self.timeout)
        finally:
            call(path, "revalidator/resume", timeout=self.timeout)
