"""How netctl is invoked: the real entry point in a subprocess, global flags, exit codes, help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from netmaster.cli.netctl import cli
from testbed.cluster.prereq import requires
from testbed.ports import free_port

from .conftest import REPO_ROOT, Netctl, running_netmaster


def _run(*args: str, netmaster: str | None = None, entry: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NETMASTER", "NETMASTER_TOKEN")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if netmaster:
        env["NETMASTER"] = netmaster
    command = entry or [sys.executable, "-m", "netmaster.cli.netctl"]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)


def test_module_entry_point_end_to_end(netmaster_url: str) -> None:
    created = _run("tenant", "create", "sub", netmaster=netmaster_url)
    assert (created.returncode, created.stdout) == (0, "Creating tenant sub\n")
    listed = _run("tenant", "ls", "-j", netmaster=netmaster_url)
    assert listed.returncode == 0
    assert "sub" in {t["tenantName"] for t in json.loads(listed.stdout)}
    rest_error = _run("net", "create", "-t", "missing", "-s", "10.0.0.0/24", "n", netmaster=netmaster_url)
    assert rest_error.returncode == 3
    assert rest_error.stderr.startswith("ERROR: ")
    usage = _run("tenant", "create", netmaster=netmaster_url)
    assert usage.returncode == 1
    assert "Usage: netctl tenant create" in usage.stderr


def test_netmaster_flag_overrides_environment(netmaster_url: str) -> None:
    host_port = netmaster_url.removeprefix("http://")
    result = _run("--netmaster", host_port, "tenant", "ls", "-q", netmaster="http://127.0.0.1:1")
    assert result.returncode == 0
    assert "default" in result.stdout.split()


def test_declared_console_script_entry_point(netmaster_url: str) -> None:
    """Run what pip's ``netctl`` wrapper runs: the ``[project.scripts]`` target, via ``sys.exit``."""
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["netctl"].partition(":")
    wrapper = f"import sys; from {module} import {function}; sys.exit({function}())"
    result = _run("tenant", "ls", "-q", netmaster=netmaster_url, entry=[sys.executable, "-c", wrapper])
    assert result.returncode == 0
    assert "default" in result.stdout.split()
    missing = _run("net", "inspect", "nope", netmaster=netmaster_url, entry=[sys.executable, "-c", wrapper])
    assert missing.returncode == 3


@requires("the contiv distribution is not installed (no netctl on PATH)" if shutil.which("netctl") is None else None)
def test_installed_console_script(netmaster_url: str) -> None:
    result = _run("tenant", "ls", "-q", netmaster=netmaster_url, entry=[str(shutil.which("netctl"))])
    assert result.returncode == 0
    assert "default" in result.stdout.split()


def test_unreachable_netmaster_exits_1_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _run("tenant", "ls", netmaster=url)
    assert result.returncode == 1
    assert result.stderr.startswith(f"ERROR: Error connecting to netmaster at {url}")
    assert "Traceback" not in result.stderr


def test_default_netmaster_url_is_documented_in_help() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "http://127.0.0.1:9999" in result.stdout


def test_aliases(netctl: Netctl) -> None:
    assert netctl("net", "list", "-q").stdout == netctl("network", "ls", "-q").stdout
    netctl("ep", "ls")
    netctl("tenant", "create", "alias-t")
    netctl("tenant", "delete", "alias-t")


def test_help_and_usage_errors(netctl: Netctl) -> None:
    bare = netctl()
    assert "Commands:" in bare.stdout
    assert "network, net" in bare.stdout
    group_help = netctl("policy")
    assert "rule-add" in group_help.stdout
    unknown = netctl("no-such-command", expect=1)
    assert "No such command" in unknown.stderr
    bad_flag = netctl("net", "ls", "--bogus", expect=1)
    assert "No such option" in bad_flag.stderr
    bad_int = netctl("policy", "rule-add", "-p", "high", "p", "1", expect=1)
    assert "high" in bad_int.stderr


@pytest.fixture(scope="module")
def token_netmaster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A netmaster that requires a bearer token."""
    with running_netmaster(tmp_path_factory.mktemp("netmaster-token"), "--token", "s3cret") as url:
        yield url


def test_token_from_flag_or_environment(token_netmaster: str) -> None:
    runner = CliRunner()
    env = {"NETMASTER": token_netmaster, "NETMASTER_TOKEN": ""}
    refused = runner.invoke(cli, ["tenant", "ls", "-q"], env=env)
    assert refused.exit_code == 3
    assert refused.stderr.startswith("ERROR: ")
    with_flag = runner.invoke(cli, ["--token", "s3cret", "tenant", "ls", "-q"], env=env)
    assert (with_flag.exit_code, with_flag.stdout) == (0, "default\n")
    with_env = runner.invoke(cli, ["tenant", "ls", "-q"], env={**env, "NETMASTER_TOKEN": "s3cret"})
    assert (with_env.exit_code, with_env.stdout) == (0, "default\n")
    wrong = runner.invoke(cli, ["--token", "guess", "tenant", "ls"], env=env)
    assert wrong.exit_code == 3


def test_closed_pipe_ends_quietly(netmaster_url: str) -> None:
    """``netctl … | head`` must not spill a BrokenPipeError traceback on the terminal."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NETMASTER": netmaster_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "netmaster.cli.netctl", "tenant", "ls", "-j"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # the reader goes away before netctl writes
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
