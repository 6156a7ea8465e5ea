"""``netplugin install-cni``: put the ``contiv`` binary and an example network list in place.

The binary is the source of :mod:`agent.cni.plugin` behind a shebang naming this interpreter. A copy
rather than a wrapper importing the package: runtimes start plugins with a minimal environment (no
PYTHONPATH, no virtualenv activation), and the copy needs nothing but the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent.cni import plugin

EXAMPLE_NAME = "contiv-net"


def example_conflist(name: str = EXAMPLE_NAME, tenant: str = "default", network: str = "",
                     group: str = "", socket: str = plugin.DEFAULT_SOCKET) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "contiv", "tenant": tenant, "network": network or name}
    if group:
        entry["group"] = group
    if socket != plugin.DEFAULT_SOCKET:
        entry["agentSocket"] = socket
    return {"cniVersion": "1.0.0", "cniVersions": ["1.0.0", "1.1.0"], "name": name, "plugins": [entry]}


def _write_atomic(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)  # a runtime exec'ing the binary meanwhile sees the old or the new file, never half


def install(bin_dir: Path, conf_dir: Path | None = None, python: str = sys.executable,
            **conflist: str) -> list[Path]:
    """Write ``bin_dir/contiv`` (and ``conf_dir/10-contiv.conflist`` when *conf_dir* is given)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    source = Path(plugin.__file__).read_text()
    binary = bin_dir / "contiv"
    _write_atomic(binary, f"#!{python} -sS\n{source}", 0o755)
    written = [binary]
    if conf_dir is not None:
        conf_dir.mkdir(parents=True, exist_ok=True)
        conf = conf_dir / "10-contiv.conflist"
        _write_atomic(conf, json.dumps(example_conflist(**conflist), indent=2) + "\n", 0o644)
        written.append(conf)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netplugin install-cni", description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", type=Path, default=Path("/opt/cni/bin"))
    ap.add_argument("--conf-dir", type=Path, help="also write an example 10-contiv.conflist here")
    ap.add_argument("--name", default=EXAMPLE_NAME, help="example network list name")
    ap.add_argument("--tenant", default="default")
    ap.add_argument("--network", default="", help="Contiv network (default: --name)")
    ap.add_argument("--group", default="")
    ap.add_argument("--socket", default=plugin.DEFAULT_SOCKET, help="the agent's CNI socket")
    args = ap.parse_args(argv)
    for path in install(args.bin_dir, args.conf_dir, name=args.name, tenant=args.tenant, network=args.network,
                        group=args.group, socket=args.socket):
        print(path)
    return 0
