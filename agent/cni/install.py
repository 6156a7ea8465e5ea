"""``netplugin install-cni``: put the ``contiv`` binary and an example network list in place.

The binary is the source of :mod:`agent.cni.plugin` behind a shebang naming an interpreter run
isolated (``-I -S``: no site packages, no ``PYTHON*`` variables from the runtime's environment). A
copy rather than a wrapper importing the package: runtimes start plugins with a minimal environment
(no PYTHONPATH, no virtualenv activation), and the copy needs nothing but the standard library.

Which interpreter: the plugin runs once per container operation and its start is most of its cost,
so the default is the system's ``/usr/bin/python3`` when it is 3.10 or newer (distributions build
it statically linked and profile-optimised: Debian's starts in ~11 ms where a shared-library build
such as pyenv's takes ~15), else the interpreter running this command. ``--python`` chooses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.cni import plugin
from agent.cni.protocol import POD_ANNOTATIONS

EXAMPLE_NAME = "contiv-net"
SYSTEM_PYTHON = "/usr/bin/python3"
MIN_PYTHON = (3, 10)  # the plugin's syntax (``X | Y`` in isinstance)


def example_conflist(name: str = EXAMPLE_NAME, tenant: str = "default", network: str = "",
                     group: str = "", socket: str = plugin.DEFAULT_SOCKET) -> dict[str, Any]:
    # The capability makes containerd and CRI-O pass the pod's annotations (Contiv's io.contiv.* labels).
    entry: dict[str, Any] = {"type": "contiv", "tenant": tenant, "network": network or name,
                             "capabilities": {POD_ANNOTATIONS: True}}
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


def runs_plugin(python: str) -> bool:
    """Whether *python* is an interpreter new enough for the plugin."""
    check = f"import sys; sys.exit(0 if sys.version_info >= {MIN_PYTHON!r} else 1)"
    try:
        return subprocess.run([python, "-I", "-S", "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def default_python() -> str:
    """The system's python3 if it can run the plugin, else this interpreter."""
    return SYSTEM_PYTHON if os.access(SYSTEM_PYTHON, os.X_OK) and runs_plugin(SYSTEM_PYTHON) else sys.executable


def install(bin_dir: Path, conf_dir: Path | None = None, python: str | None = None,
            **conflist: str) -> list[Path]:
    """Write ``bin_dir/contiv`` (and ``conf_dir/10-contiv.conflist`` when *conf_dir* is given), the
    binary run by *python* (default: :func:`default_python`)."""
    if python is None:
        python = default_python()
    elif not runs_plugin(python):
        raise ValueError(f"{python} cannot run the contiv plugin (Python {'.'.join(map(str, MIN_PYTHON))}+ needed)")
    bin_dir.mkdir(parents=True, exist_ok=True)
    source = Path(plugin.__file__).read_text()
    binary = bin_dir / "contiv"
    _write_atomic(binary, f"#!{python} -IS\n{source}", 0o755)
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
    ap.add_argument("--python", help=f"interpreter for the plugin binary (default: {SYSTEM_PYTHON} if it is "
                                     f"{'.'.join(map(str, MIN_PYTHON))} or newer, else this one)")
    args = ap.parse_args(argv)
    try:
        written = install(args.bin_dir, args.conf_dir, python=args.python, name=args.name, tenant=args.tenant,
                          network=args.network, group=args.group, socket=args.socket)
    except ValueError as exc:
        ap.error(str(exc))
    for path in written:
        print(path)
    return 0
