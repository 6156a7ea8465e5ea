"""Start real etcd members for tests and benchmarks: one member or a small cluster, free ports, tmp dirs.

Tests use a real etcd rather than a mock because the point of the etcd backend is to agree with etcd's
own semantics (revisions, compaction, lease expiry, member failure). Members run with a 10 ms heartbeat
and a 100 ms election timeout so a cluster is healthy in about 0.1 s and re-elects quickly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed.ports import free_port
from testbed.process import stop_process

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"



def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


@dataclass
class EtcdMember:
    """One etcd process; ``start`` again after ``kill``/``stop`` reuses its data dir (a restart)."""

    name: str
    data_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    scheme: str = "http"
    # Fast raft timing for tests (healthy in ~0.1 s); None keeps etcd's defaults (100 ms / 1 s), as
    # benchmarks should, so their figures mean what they would in production.
    timing: tuple[int, int] | None = (10, 100)
    proc: subprocess.Popen | None = None

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self, initial_cluster: str, state: str = "new") -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            ETCD, "--name", self.name, "--data-dir", str(self.data_dir / "data"),
            "--logger=zap", f"--log-outputs={self.data_dir / 'etcd.log'}",
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
            *self.extra_args,
        ]  # fmt: skip
        if self.timing is not None:
            args += [f"--heartbeat-interval={self.timing[0]}", f"--election-timeout={self.timing[1]}"]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_listening(self, timeout: float = 10.0) -> None:
        if not _wait_port(self.client_port, timeout):
            raise RuntimeError(f"etcd {self.name} did not listen on {self.endpoint}; see {self.data_dir}")

    def _signal(self, sig: int, wait: float) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, sig, wait)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the member vanishes without telling anyone."""
        self._signal(signal.SIGKILL, 5)

    def stop(self) -> None:
        self._signal(signal.SIGTERM, 10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    """``size`` members on 127.0.0.1; ``url`` is the ``etcd://`` store URL naming every member."""

    def __init__(
        self,
        base_dir: Path,
        size: int = 1,
        extra_args: list[str] | None = None,
        scheme: str = "http",
        timing: tuple[int, int] | None = (10, 100),
    ) -> None:
        self.base_dir = base_dir
        self.members = [
            EtcdMember(f"n{i}", base_dir / f"n{i}", extra_args=list(extra_args or []), scheme=scheme, timing=timing)
            for i in range(size)
        ]

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(self.endpoints)

    def start(self, timeout: float = 15.0) -> EtcdCluster:
        for m in self.members:
            m.start(self.initial_cluster)
        for m in self.members:
            m.wait_listening(timeout)
        self.wait_healthy(timeout)
        return self

    def restart(self, member: EtcdMember, timeout: float = 15.0) -> None:
        member.start(self.initial_cluster, state="existing")
        member.wait_listening(timeout)
        self.wait_healthy(timeout)

    def etcdctl(self, *args: str, timeout: float = 10.0, env: dict[str, str] | None = None) -> str:
        live = [m.client_url for m in self.members if m.running]
        out = subprocess.run(
            [ETCDCTL, "--endpoints", ",".join(live), "--command-timeout=5s", *self._tls_args(), *args],
            env={**os.environ, "ETCDCTL_API": "3", **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return out.stdout

    def wait_healthy(self, timeout: float = 15.0) -> None:
        """Until a leader exists and a linearizable read succeeds on every running member."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                for m in self.members:
                    if m.running:
                        self._health(m)
                return
            except (subprocess.SubprocessError, OSError) as exc:
                last = str(getattr(exc, "stderr", "") or exc)
                time.sleep(0.05)
        raise RuntimeError(f"etcd cluster not healthy after {timeout}s: {last}")

    def _health(self, m: EtcdMember) -> None:
        args = [ETCDCTL, "--endpoints", m.client_url, "--command-timeout=2s", "endpoint", "health"]
        args += self._tls_args()
        subprocess.run(
            args,
            env={**os.environ, "ETCDCTL_API": "3"},
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )

    def _tls_args(self) -> list[str]:
        """etcdctl flags matching the TLS options the members were started with."""
        flags = {"--trusted-ca-file": "--cacert", "--cert-file": "--cert", "--key-file": "--key"}
        out = []
        for arg in self.members[0].extra_args:
            name, _, value = arg.partition("=")
            if name in flags:
                out.append(f"{flags[name]}={value}")
        return out

    def stop(self) -> None:
        for m in self.members:
            m.stop()

    def wipe(self) -> None:
        """Delete every key and revoke every lease, so a test starts from an empty keyspace."""
        import grpc
        from aetcd import rpc

        with grpc.insecure_channel(self.endpoints[0]) as channel:
            leases = rpc.LeaseStub(channel)
            for lease in leases.LeaseLeases(rpc.LeaseLeasesRequest(), timeout=5).leases:
                leases.LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease.ID), timeout=5)
            rpc.KVStub(channel).DeleteRange(rpc.DeleteRangeRequest(key=b"\0", range_end=b"\0"), timeout=5)


_shared: EtcdCluster | None = None


def shared_etcd() -> EtcdCluster:
    """One single-member etcd for the whole test session, started on first use.

    Store factories are plain functions (see tests/store/conftest.py), so they cannot request a
    fixture; they call this instead, and the session fixture in tests/conftest.py stops it.
    """
    global _shared
    if _shared is None:
        import atexit
        import tempfile

        base = Path(tempfile.mkdtemp(prefix="contiv-etcd-"))
        _shared = EtcdCluster(base, 1).start()
        atexit.register(stop_shared_etcd)  # also when pytest is interrupted before session teardown
    return _shared


def stop_shared_etcd() -> None:
    global _shared
    if _shared is not None:
        cluster, _shared = _shared, None
        cluster.stop()
        shutil.rmtree(cluster.base_dir, ignore_errors=True)
