"""The README's setup on a stock Debian 12 with Debian's own python3, as a new user does it.

A fresh debootstrap Debian (testbed.debian: cached, chroot, own mount and PID namespaces), the checkout
copied in, python3-venv and pip removed: ``scripts/setup`` (without the container runtimes) brings what
is missing from apt and installs the project into ``.venv`` from PyPI, never into the system
interpreter; then the five commands answer ``--help`` from PATH (links in /usr/local/bin, or the
activated environment), ``scripts/demo --basic`` runs against the installed environment, setup again
does nothing, and a requirement that cannot be installed stops setup with pip's error.

Needs root, network to Debian's and PyPI's mirrors, and debootstrap, unshare, chroot; skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.debian import DebianRoot, missing_tools

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and apt need root"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}"),
]

REPO = Path(__file__).resolve().parent.parent
CHECKOUT = "/src/contiv"
COMMANDS = ("netmaster", "netctl", "aci-gw", "apic-mock", "netplugin")
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
                                    ".ruff_cache", ".hypothesis")
NO_RUNTIMES = {"CONTIV_SETUP_RUNTIMES": "0"}


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"


@pytest.fixture(scope="module")
def debian() -> Iterator[DebianRoot]:
    """The Debian with the checkout in it and none of python3-venv or pip: only Debian's python3."""
    with DebianRoot() as root:
        shutil.copytree(REPO, root.path / CHECKOUT.lstrip("/"), ignore=NOT_COPIED, symlinks=True)
        purge = root.run("apt-get purge -y -qq python3-venv python3.11-venv python3-pip", timeout=300,
                         DEBIAN_FRONTEND="noninteractive")
        assert purge.returncode == 0, shown(purge)
        assert root.run("/usr/bin/python3 -m venv /tmp/v", timeout=60).returncode != 0  # venv really gone
        yield root


@pytest.fixture(scope="module")
def installed(debian: DebianRoot) -> DebianRoot:
    setup = debian.run(f"cd {CHECKOUT} && scripts/setup", timeout=1800, **NO_RUNTIMES)
    assert setup.returncode == 0, shown(setup)
    assert "python3-venv" in setup.stdout  # brought back from apt
    assert f"creating the virtual environment {CHECKOUT}/.venv from /usr/bin/python3" in setup.stdout
    return debian


@pytest.mark.timeout(2400)
def test_setup_installs_into_its_own_environment_not_the_system_python(installed: DebianRoot) -> None:
    system = installed.run("/usr/bin/python3 -c 'import fastapi'", timeout=60)
    assert system.returncode != 0
    assert "No module named 'fastapi'" in system.stderr
    inside = installed.run(f"{CHECKOUT}/.venv/bin/python -c 'import sys, netmaster; print(sys.base_prefix, "
                           "netmaster.__file__)'", timeout=60)
    assert inside.stdout.split() == ["/usr", f"{CHECKOUT}/netmaster/__init__.py"], shown(inside)
    assert installed.run("dpkg-query -W podman docker.io", timeout=60).returncode != 0  # runtimes skipped


@pytest.mark.timeout(600)
def test_the_five_commands_answer_help_from_path(installed: DebianRoot) -> None:
    links = installed.run(f"ln -sf {' '.join(f'{CHECKOUT}/.venv/bin/{c}' for c in COMMANDS)} /usr/local/bin/",
                          timeout=60)
    assert links.returncode == 0, shown(links)
    for command in COMMANDS:
        helped = installed.run(f"cd / && {command} --help", timeout=120)
        assert helped.returncode == 0, (command, shown(helped))
        assert "usage" in helped.stdout.lower(), (command, helped.stdout)
    activated = installed.run(f"rm /usr/local/bin/netctl && cd {CHECKOUT} && . .venv/bin/activate && "
                              "command -v netctl && netctl --help", timeout=120)
    assert activated.returncode == 0, shown(activated)
    assert activated.stdout.splitlines()[0] == f"{CHECKOUT}/.venv/bin/netctl"


@pytest.mark.timeout(900)
def test_demo_basic_runs_and_setup_again_installs_nothing(installed: DebianRoot) -> None:
    demo = installed.run(f"cd {CHECKOUT} && scripts/demo --basic", timeout=600, **NO_RUNTIMES)
    assert demo.returncode == 0, shown(demo)
    assert "netctl tenant create blue" in demo.stdout
    assert "Done. netmaster stopped" in demo.stdout
    assert "setup:" not in demo.stdout  # its scripts/setup found everything in place


@pytest.mark.timeout(900)
def test_a_failing_install_stops_setup_with_the_error(installed: DebianRoot) -> None:
    broken = installed.run(f"cd {CHECKOUT} && scripts/setup", timeout=600, CONTIV_SETUP_EXTRA_PIP="no-such-package-xyz",
                           **NO_RUNTIMES)
    assert broken.returncode != 0, shown(broken)
    assert "No matching distribution found for no-such-package-xyz" in broken.stderr, shown(broken)
    assert "Traceback" not in broken.stdout + broken.stderr
    again = installed.run(f"cd {CHECKOUT} && scripts/setup", timeout=900, **NO_RUNTIMES)
    assert again.returncode == 0, shown(again)
    assert "installing the project" in again.stdout  # the failed run left nothing that passes for done
