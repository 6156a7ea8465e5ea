"""A minimal Debian 12 made with debootstrap, for tests that need a stock Debian rather than this machine:
the aci-gw image's base (tests/aci_gw/test_image.py) and a fresh install from the README
(tests/install). Made once and cached as a tar under ``CONTIV_TEST_CACHE`` (default
/var/cache/contiv-test), since debootstrap takes minutes and the result never changes.

:class:`DebianRoot` unpacks that tar into a throw-away directory and runs shell scripts in it as root
(chroot) with the network settings that work on this machine (apt sources, pip configuration,
certificate authorities, DNS). Each run happens in its own mount and PID namespaces: the ``/proc``,
``/sys`` and ``/dev/shm`` it mounts, and every process it starts, end with it, also when it fails or
times out, so nothing is left mounted under the directory that is then removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

CACHE = Path(os.environ.get("CONTIV_TEST_CACHE", "/var/cache/contiv-test"))
BASE_TAR = CACHE / "debian-python-bookworm.tar"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = ("debootstrap", "unshare", "chroot", "mount")
# What a run inside sees of this machine's environment: pip's and the proxies' settings.
PASSED_ENV_PREFIXES = ("PIP_",)
PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
# Mounted inside the run's own mount namespace, gone with it. The root's /dev holds debootstrap's nodes.
MOUNT_SCRIPT = """set -e
mount -t proc proc "$1/proc"
mount -t sysfs sysfs "$1/sys"
mount -t tmpfs tmpfs "$1/dev/shm"
root=$1; shift
exec chroot "$root" "$@"
"""
# Package scripts must not start services in the root: it shares this machine's network and kernel
# datapath (an Open vSwitch started in it would fight the machine's own).
POLICY_RC_D = "#!/bin/sh\nexit 101\n"


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def base_rootfs_tar() -> Path:
    """A minimal Debian with Python, as a tar, made once with debootstrap and cached."""
    if BASE_TAR.exists():
        return BASE_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
    try:
        include = "--include=python3,python3-venv,python3-pip,ca-certificates"
        subprocess.run(["debootstrap", "--variant=minbase", include, "bookworm", str(root)], check=True,
                       capture_output=True, timeout=900)
        # pip inside must trust the same certificate authorities as this machine
        shutil.copy(CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
        partial = BASE_TAR.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True, timeout=600)
        partial.rename(BASE_TAR)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return BASE_TAR


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below *path*, as this process's mount namespace sees them."""
    found = []
    prefix = str(path).rstrip("/") + "/"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(path) or point.startswith(prefix):
            found.append(point)
    return found


class DebianRoot:
    """A fresh copy of the cached Debian, set up to reach this machine's package mirrors; removed on exit."""

    def __init__(self, parent: Path = CACHE) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="debian-root-", dir=parent))

    def __enter__(self) -> Self:
        try:
            subprocess.run(["tar", "-C", str(self.path), "-xf", str(base_rootfs_tar())], check=True,
                           capture_output=True, timeout=600)
            self._configure_network()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove()

    def _configure_network(self) -> None:
        """apt sources and settings, pip configuration, certificate authorities and DNS as on this machine."""
        etc = self.path / "etc"
        host_sources = [p for p in Path("/etc/apt/sources.list.d").glob("*") if p.suffix in (".list", ".sources")]
        if host_sources or Path("/etc/apt/sources.list").is_file():
            (etc / "apt/sources.list").unlink(missing_ok=True)  # debootstrap's; the machine's replace it
            if Path("/etc/apt/sources.list").is_file():
                shutil.copy("/etc/apt/sources.list", etc / "apt/sources.list")
            for source in host_sources:
                shutil.copy(source, etc / "apt/sources.list.d" / source.name)
        for conf in Path("/etc/apt/apt.conf.d").glob("*"):
            if conf.is_file() and "Acquire::" in conf.read_text(errors="replace"):  # proxies, validity
                shutil.copy(conf, etc / "apt/apt.conf.d" / conf.name)
        if Path("/etc/pip.conf").is_file():
            shutil.copy("/etc/pip.conf", etc / "pip.conf")
        if Path("/etc/xdg/pip").is_dir():
            shutil.copytree("/etc/xdg/pip", etc / "xdg/pip", dirs_exist_ok=True)
        shutil.copy(CA_BUNDLE, etc / "ssl/certs/ca-certificates.crt")
        for name in ("resolv.conf", "hosts"):
            target = etc / name
            target.unlink(missing_ok=True)
            shutil.copy(Path("/etc") / name, target)  # follows a symlink to the file in use
        policy = self.path / "usr/sbin/policy-rc.d"
        policy.write_text(POLICY_RC_D)
        policy.chmod(0o755)

    def environment(self, **extra: str) -> dict[str, str]:
        """A login-like environment for root inside, with this machine's pip and proxy settings."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               "LANG": "C.UTF-8", "TERM": "dumb"}
        env.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV_PREFIXES) or k in PASSED_ENV})
        env.update(extra)
        return env

    def run(self, script: str, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
        """Run *script* with bash as root inside, in new mount and PID namespaces; output captured."""
        command = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
                   "sh", "-c", MOUNT_SCRIPT, "mount-root", str(self.path), "/bin/bash", "-c", script]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=self.environment(**env), stdin=subprocess.DEVNULL)

    def remove(self) -> None:
        """Delete the copy, refusing to when something is still mounted in it (the deletion would
        descend into the mount)."""
        leftover = mounts_under(self.path)
        if leftover:
            raise RuntimeError(f"still mounted under {self.path}: {leftover}")
        shutil.rmtree(self.path, ignore_errors=True)
