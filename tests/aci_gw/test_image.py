"""The container image, built and run for real: a private dockerd, a Debian base image made locally with
debootstrap (no registry is reachable; cached under /var/cache/contiv-test so later runs skip it), an
offline build from wheels, and an app profile pushed through the running container to apic_mock.

Needs root and the ``docker.io`` and ``debootstrap`` packages; skipped with that reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aci_gw_harness import read_tree

from testbed.aci_gw_payloads import LEAF, PHYS_DOMAIN, app_profile
from testbed.cluster.prereq import unavailable
from testbed.ports import free_port
from testbed.process import stop_process

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CONTIV_TEST_CACHE", "/var/cache/contiv-test"))
BASE_TAR = CACHE / "debian-python-bookworm.tar"
BASE_IMAGE = "local/debian-python:bookworm"
IMAGE = "contiv/aci-gw:test"
MISSING = [tool for tool in ("dockerd", "docker", "debootstrap") if shutil.which(tool) is None]

Docker = Callable[..., subprocess.CompletedProcess[str]]


def _base_rootfs_tar() -> Path:
    """A minimal Debian with Python, as a tar, made once with debootstrap and cached."""
    if BASE_TAR.exists():
        return BASE_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
    try:
        include = "--include=python3,python3-venv,python3-pip,ca-certificates"
        subprocess.run(["debootstrap", "--variant=minbase", include, "bookworm", str(root)], check=True,
                       capture_output=True, timeout=900)
        # pip inside the build must trust the same certificate authorities as this machine
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
        partial = BASE_TAR.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True, timeout=600)
        partial.rename(BASE_TAR)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return BASE_TAR


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    """A private dockerd (own data root, no bridge, no iptables), stopped after the module."""
    if MISSING:
        unavailable(f"needs {', '.join(MISSING)} (apt-get install docker.io debootstrap)")
    if os.geteuid() != 0:
        unavailable("dockerd needs root")
    work = Path(tempfile.mkdtemp(prefix="acigw-docker-"))
    sock = work / "docker.sock"
    log = open(work / "dockerd.log", "wb")  # noqa: SIM115 - closed in the teardown below
    daemon = subprocess.Popen(
        ["dockerd", "--host", f"unix://{sock}", "--data-root", str(work / "root"), "--exec-root",
         str(work / "exec"), "--pidfile", str(work / "dockerd.pid"), "--bridge", "none",
         "--iptables=false", "--ip6tables=false"],
        stdout=log, stderr=subprocess.STDOUT,
    )

    def run(
        *args: str, check: bool = True, timeout: float = 600, **kw: object
    ) -> subprocess.CompletedProcess:
        kw.setdefault("text", True)
        proc = subprocess.run(["docker", "-H", f"unix://{sock}", *args], capture_output=True,
                              timeout=timeout, env={**os.environ, "DOCKER_BUILDKIT": "0"}, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args[:2])} failed: {proc.stderr[-3000:]!r}")
        return proc

    try:
        deadline = time.monotonic() + 60
        while run("version", check=False, timeout=10).returncode != 0:
            assert daemon.poll() is None, (work / "dockerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dockerd did not start"
            time.sleep(0.5)
        yield run
    finally:
        stop_process(daemon, grace=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def image(docker: Docker) -> str:
    """The aci-gw image built from a clean context, offline, on the locally made base."""
    with open(_base_rootfs_tar(), "rb") as tar:
        docker("import", "-", BASE_IMAGE, stdin=tar, text=False, timeout=600)
    ctx = Path(tempfile.mkdtemp(prefix="acigw-ctx-"))
    try:
        for item in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
            shutil.copy(ROOT / item, ctx / item)
        for package in ("aci_gw", "contiv_api"):  # the gateway and the wire formats it shares with netmaster
            shutil.copytree(ROOT / package, ctx / package, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "docker", ctx / "docker")
        wheels = CACHE / "aci-gw-wheels"
        requirements = ROOT / "docker/aci-gw/requirements.txt"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), "-r",
                        str(requirements), "setuptools>=68", "wheel"], check=True, timeout=600)
        for wheel in wheels.glob("*.whl"):
            shutil.copy(wheel, ctx / "docker/aci-gw/wheels" / wheel.name)
        docker("build", "-q", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
               "--build-arg", "PIP_OFFLINE=1", "-t", IMAGE, str(ctx), timeout=900)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    return IMAGE



@pytest.mark.timeout(1800)
def test_image_runs_as_non_root_and_pushes_through_to_the_apic(docker: Docker, image: str, apic) -> None:
    assert docker("image", "inspect", image, "--format", "{{.Config.User}}").stdout.strip() == "10001"
    healthcheck = docker("image", "inspect", image, "--format", "{{json .Config.Healthcheck.Test}}").stdout
    assert "--healthcheck" in healthcheck

    bad = docker("run", "--rm", "--network", "host", "-e", "APIC_URL=nonsense", image, check=False,
                 timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "aci-gw: configuration error: APIC_URL='nonsense': expected http(s)://host[:port]"

    config = Path(tempfile.mkdtemp(prefix="acigw-cfg-"))
    config.chmod(0o755)
    shutil.copy(apic.ca_file, config / "apic-ca.pem")
    (config / "apic-ca.pem").chmod(0o644)
    port = free_port()
    name = f"aci-gw-test-{port}"
    env = {"APIC_URL": apic.url, "APIC_USERNAME": apic.username, "APIC_PASSWORD": apic.password,
           "APIC_CA_BUNDLE": "/aciconfig/apic-ca.pem", "APIC_PHYS_DOMAIN": PHYS_DOMAIN,
           "APIC_LEAF_NODE": LEAF, "ACI_GW_LISTEN_URL": f"127.0.0.1:{port}"}
    args = [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]
    docker("run", "-d", "--name", name, "--network", "host", "--health-interval", "1s",
           "--health-start-period", "1s", "-v", f"{config}:/aciconfig:ro", *args, image, timeout=120)
    try:
        deadline = time.monotonic() + 90
        while docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() != "healthy":
            state = docker("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            assert state == "running", docker("logs", name, check=False).stderr[-3000:]
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr[-3000:]
            time.sleep(0.5)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as gw:
            first = gw.post("/createAppProf", json=app_profile()).json()
            assert first["result"] == "success", first
            again = gw.post("/createAppProf", json=app_profile()).json()
            assert again["changes"] == 0
        assert read_tree(apic, "uni/tn-t1/ap-app1/epg-web") is not None
        logs = docker("logs", name, check=False)
        assert "Traceback" not in logs.stdout + logs.stderr
    finally:
        docker("rm", "-f", name, check=False, timeout=120)
        shutil.rmtree(config, ignore_errors=True)


def test_optional_cobra_wheels_are_documented() -> None:
    readme = (ROOT / "docker/aci-gw/wheels/README.md").read_text()
    assert "acicobra-*.whl" in readme
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert "acicobra-*.whl" in dockerfile
