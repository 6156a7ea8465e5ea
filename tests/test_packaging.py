"""The wheel, as an operator installs it (docs/operations.md, *Installing*): ``pip wheel .`` builds it,
``pip install contiv-*.whl`` puts it in a clean virtual environment without the test extras, then every
module of the five product packages imports (no test machinery, no pytest, nothing from outside the
wheel) and every command answers ``--help``."""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("netmaster", "agent", "aci_gw", "apic_mock", "contiv_api")

IMPORT_ALL = """
import importlib, json, pkgutil, sys
failed, count = {}, 0
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if info.name.endswith(".__main__"):
            continue  # runs its command when imported: the --help runs below cover those
        count += 1
        try:
            importlib.import_module(info.name)
        except BaseException as exc:  # SystemExit from a __main__ counts as a failure too
            failed[info.name] = repr(exc)
present = {m: importlib.util.find_spec(m) is not None for m in ("pytest", "testbed", "tests", "demo", "bench")}
print(json.dumps({"count": count, "failed": failed, "present": present,
                  "origin": importlib.import_module("netmaster").__file__}))
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_wheel_installs_and_every_module_imports(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", ".venv"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # As docs/operations.md says: a wheel file first, then that file installed with its dependencies.
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("contiv-*-py3-none-any.whl")
    install = subprocess.run([*pip, "install", "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    # Run from an empty directory: only the installed wheel is importable, not the checkout.
    probe = subprocess.run([str(python), "-c", IMPORT_ALL, *PRODUCT], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout.splitlines()[-1])
    assert result["failed"] == {}
    assert result["count"] > 150, result["count"]
    assert result["present"] == {"pytest": False, "testbed": False, "tests": False, "demo": False, "bench": False}
    assert str(env_dir) in result["origin"]
    for command in ("netmaster", "netctl", "aci-gw", "apic-mock", "netplugin", "contiv-k8s-adapter"):
        helped = subprocess.run([str(env_dir / "bin" / command), "--help"], capture_output=True, text=True,
                                cwd=tmp_path, timeout=60)
        assert helped.returncode == 0, (command, helped.stderr)
    # without the k8s extra the Kubernetes adapter says what to install, in one line
    adapter = subprocess.run([str(env_dir / "bin" / "contiv-k8s-adapter"), "--metrics-listen", ""],
                             capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert adapter.returncode == 1, adapter.stderr
    assert adapter.stderr.count("\n") == 1, adapter.stderr
    assert "pip install 'contiv[k8s]'" in adapter.stderr
