"""A real-component test whose prerequisite is missing: skipped on a developer's machine, a failure
under CI=true (tests/conftest.py enforces testbed.cluster.prereq's mark), so CI cannot go green by
testing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_TESTS = '''
from testbed.cluster.prereq import requires, unavailable

pytestmark = requires("the frobnicator binary is missing")


def test_needs_it() -> None:
    pass


def test_fixture_side() -> None:
    unavailable("no frobnicator either")
'''


def _run(tmp_path: Path, ci: str | None) -> str:
    (tmp_path / "test_needs_frobnicator.py").write_text(_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO)
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "-p", "tests.conftest",
           "-p", "no:cacheprovider", "-q", "-rfEs", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return proc.stdout


def test_missing_prerequisite_skips_locally_and_fails_under_ci(tmp_path: Path) -> None:
    local = _run(tmp_path, None)
    assert "2 skipped" in local, local
    assert "warning" not in local, "the mark is registered"
    assert "the frobnicator binary is missing" in local
    ci = _run(tmp_path, "true")
    assert "2 errors" in ci, ci  # failed in setup, before the test body: pytest counts it an error
    assert "CI=true and a prerequisite is missing: the frobnicator binary is missing" in ci
