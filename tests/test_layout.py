"""The import rule of docs/architecture.md ("Where to put things"), checked on every module.

Product packages never import the test bed, the tests, the demo, the benchmarks or pytest; the
daemons depend on ``contiv_api`` for what crosses a process boundary, never on each other's
internals; ``contiv_api`` depends on no other package of the project. Imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DEV_ONLY = {"testbed", "tests", "demo", "bench", "pytest", "_pytest"}
PRODUCT = ("netmaster", "agent", "aci_gw", "apic_mock", "contiv_api")
# package -> the top-level modules it must not import
FORBIDDEN: dict[str, set[str]] = {
    "contiv_api": DEV_ONLY | {"netmaster", "agent", "aci_gw", "apic_mock"},
    "netmaster": DEV_ONLY | {"agent", "aci_gw", "apic_mock"},
    "agent": DEV_ONLY | {"netmaster", "aci_gw", "apic_mock"},
    "aci_gw": DEV_ONLY | {"netmaster", "agent", "apic_mock"},
    "apic_mock": DEV_ONLY | {"netmaster", "agent", "aci_gw"},
}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in *source*, at any depth."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(root: Path) -> list[str]:
    out = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path.read_text()):
                if module.split(".")[0] in forbidden:
                    out.append(f"{path.relative_to(root)}:{line}: {package} imports {module}")
    return sorted(out)


def test_the_tree_follows_the_import_rule() -> None:
    assert violations(REPO) == []


def test_a_planted_violation_is_caught(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "bad.py").write_text(
        "from netmaster.store import keys\n\ndef later():\n    import pytest\n    from testbed.ports import free_port\n"
    )
    (tmp_path / "contiv_api").mkdir()
    (tmp_path / "contiv_api" / "bad.py").write_text("import aci_gw.payload\nfrom . import mac\n")
    (tmp_path / "netmaster").mkdir()
    (tmp_path / "netmaster" / "fine.py").write_text("from contiv_api.mac import candidates\nimport httpx\n")
    assert violations(tmp_path) == [
        "agent/bad.py:1: agent imports netmaster.store",
        "agent/bad.py:4: agent imports pytest",
        "agent/bad.py:5: agent imports testbed.ports",
        "contiv_api/bad.py:1: contiv_api imports aci_gw.payload",
    ]


def test_every_product_package_has_a_rule() -> None:
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")} - DEV_ONLY
    assert on_disk == set(PRODUCT) == set(FORBIDDEN)


# contiv-k8s-adapter lives in netmaster's package but runs as a process of its own that reaches netmaster
# over REST (contiv_api's client), like netctl: of netmaster it may import only itself and the log setup.
ADAPTER = Path("netmaster/kubernetes/adapter")
ADAPTER_MAY_IMPORT = ("netmaster.kubernetes.adapter", "netmaster.logs")


def adapter_violations(root: Path) -> list[str]:
    out = []
    for path in sorted((root / ADAPTER).rglob("*.py")):
        for line, module in imported_modules(path.read_text()):
            if module.split(".")[0] == "netmaster" and not module.startswith(ADAPTER_MAY_IMPORT):
                out.append(f"{path.relative_to(root)}:{line}: the adapter imports {module}")
    return out


def test_the_kubernetes_adapter_reaches_netmaster_only_over_http(tmp_path: Path) -> None:
    assert (REPO / ADAPTER / "cli.py").exists()
    assert adapter_violations(REPO) == []
    (tmp_path / ADAPTER).mkdir(parents=True)
    (tmp_path / ADAPTER / "bad.py").write_text("from netmaster.kubernetes.service import KubernetesService\n"
                                               "from netmaster.kubernetes.adapter.translate import desired\n")
    assert adapter_violations(tmp_path) == [
        "netmaster/kubernetes/adapter/bad.py:1: the adapter imports netmaster.kubernetes.service"]
