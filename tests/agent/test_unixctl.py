"""The control-socket client the agent purges the userspace datapath's flow cache with
(agent/ovs/unixctl.py): replies read whole however they are split, errors reported, a missing
ovs-vswitchd named. The real socket is exercised by tests/kubernetes/test_netpol_truth_tables.py."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.ovs.unixctl import DatapathPurger, UnixctlError, call, vswitchd_socket


@pytest.fixture
def fake_vswitchd(tmp_path: Path) -> Iterator[tuple[Path, list[dict]]]:
    """A control socket that records requests and answers in two pieces: a result, or an error for
    an unknown command."""
    (tmp_path / "ovs-vswitchd.pid").write_text("4242\n")
    path = tmp_path / "ovs-vswitchd.4242.ctl"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    seen: list[dict] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                request = json.loads(conn.recv(65536))
                seen.append(request)
                known = request["method"].startswith("revalidator/")
                reply = json.dumps({"id": request["id"], "result": "" if known else None,
                                    "error": None if known else f"\"{request['method']}\" is not a valid command"})
                conn.sendall(reply[:10].encode())
                conn.sendall(reply[10:].encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield tmp_path, seen
    server.close()


def test_purge_runs_with_the_revalidators_paused(fake_vswitchd: tuple[Path, list[dict]]) -> None:
    rundir, seen = fake_vswitchd
    DatapathPurger(rundir).purge()
    assert [r["method"] for r in seen] == ["revalidator/pause", "revalidator/purge", "revalidator/resume"]
    assert all(r["params"] == [] for r in seen)


def test_an_error_reply_raises(fake_vswitchd: tuple[Path, list[dict]]) -> None:
    rundir, _ = fake_vswitchd
    with pytest.raises(UnixctlError, match="not a valid command"):
        call(vswitchd_socket(rundir), "no/such-command")


def test_no_vswitchd_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnixctlError, match="no ovs-vswitchd pid"):
        DatapathPurger(tmp_path).purge()
    (tmp_path / "ovs-vswitchd.pid").write_text("4243\n")  # a pid file left by a dead vswitchd
    with pytest.raises(UnixctlError, match=r"ovs-vswitchd\.4243\.ctl"):
        DatapathPurger(tmp_path).purge()
