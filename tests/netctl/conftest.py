"""Fixtures that run netctl against a real netmaster.

Each test module gets its own netmaster process (``python -m netmaster`` on a free port with a
``memory://`` store), so modules cannot see each other's objects and global-setting changes stay
local. Inside a module, tests that create tenant-scoped objects work in their own tenant.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from netmaster.cli.netctl import cli
from testbed.netmaster import NetmasterProcess

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_netmaster(log_dir: Path, *extra_args: str) -> Iterator[str]:
    """Run a real ``python -m netmaster`` on a free port with a throw-away store; yield its URL."""
    with NetmasterProcess.start("memory://", args=extra_args, log_path=log_dir / "netmaster.log") as nm:
        yield nm.url


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
