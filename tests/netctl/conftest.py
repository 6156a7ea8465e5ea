"""Fixtures that run netctl against a real netmaster.

Each test module gets its own netmaster process (``python -m netmaster`` on a free port with a
``memory://`` store), so modules cannot see each other's objects and global-setting changes stay
local. Inside a module, tests that create tenant-scoped objects work in their own tenant.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from netmaster.cli.netctl import cli
from tests.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"netmaster exited with {process.returncode}:\n{log.read_text()}")
        try:
            # Any answer means it serves (a token-protected netmaster answers 401 here).
            httpx.get(f"{url}/version", timeout=1.0)
            return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"netmaster did not answer on {url} within {STARTUP_TIMEOUT}s:\n{log.read_text()}")


@contextlib.contextmanager
def running_netmaster(log_dir: Path, *extra_args: str) -> Iterator[str]:
    """Run ``python -m netmaster`` on a free port with a throw-away store; yield its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = log_dir / "netmaster.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "netmaster", "--listen-url", f"127.0.0.1:{port}", "--cluster-store", "memory://"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *extra_args], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_serving(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def netmaster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real netmaster for the whole test module."""
    with running_netmaster(tmp_path_factory.mktemp("netmaster")) as url:
        yield url


Netctl = Callable[..., Result]


@pytest.fixture
def netctl(netmaster_url: str) -> Netctl:
    """Run ``netctl ARGS…`` in-process against the module's netmaster and check the exit code.

    ``expect`` is the exit code the test requires (0 by default); the result carries ``stdout`` and
    ``stderr`` separately so tests can check where messages go.
    """
    runner = CliRunner()

    def run(*args: str, expect: int = 0, env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(cli, list(args), env={"NETMASTER": netmaster_url, **(env or {})})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (
            f"netctl {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result

    return run


_tenant_numbers = itertools.count(1)


@pytest.fixture
def tenant(netctl: Netctl) -> str:
    """A fresh tenant for one test, created through netctl itself."""
    name = f"t{next(_tenant_numbers)}"
    netctl("tenant", "create", name)
    return name


def parse_table(text: str) -> list[dict[str, str]]:
    """Read a netctl table back into dicts, using the dashed underline to find column boundaries.

    Slicing by the underline (rather than splitting on spaces) keeps empty cells in their column, so
    a test can assert that a field is blank.
    """
    lines = text.splitlines()
    for index in range(1, len(lines)):
        if lines[index] and set(lines[index]) <= {"-", " "}:
            header_line, rule = lines[index - 1], lines[index]
            break
    else:
        raise AssertionError(f"no table in output:\n{text}")
    spans = [match.span() for match in re.finditer(r"-+", rule)]
    starts = [start for start, _ in spans] + [None]
    headers = [header_line[starts[i] : starts[i + 1]].strip() for i in range(len(spans))]
    rows = []
    for line in lines[index + 1 :]:
        if not line.strip() or line.endswith(":"):
            break
        rows.append({h: line[starts[i] : starts[i + 1]].strip() for i, h in enumerate(headers)})
    return rows
