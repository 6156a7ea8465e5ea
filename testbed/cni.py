"""Drive a CNI plugin binary the way a runtime does: environment plus stdin, result on stdout (the CNI
front-end tests and the host-fault tests of tests/agent_sync)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


@dataclass
class CniReply:
    code: int
    out: Any
    err: str
    seconds: float

    @property
    def error_code(self) -> int | None:
        return self.out.get("code") if isinstance(self.out, dict) and self.code else None


def invoke(binary: Path | str, command: str, conf: dict[str, Any] | str, *, container_id: str = "",
           netns: str = "", ifname: str = "eth0", cni_args: str = "", path: str = "",
           extra_env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> CniReply:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_ARGS": cni_args, "CNI_PATH": path or str(Path(binary).parent), "PATH": os.environ.get("PATH", "")}
    env.update(extra_env or {})
    env = {k: v for k, v in env.items() if k not in drop and (v or k in ("CNI_COMMAND",))}
    stdin = conf if isinstance(conf, str) else json.dumps(conf)
    started = time.monotonic()
    proc = subprocess.run([str(binary)], input=stdin, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    try:
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        out = proc.stdout
    return CniReply(proc.returncode, out, proc.stderr, seconds)


def plugin_conf(conf_list: dict[str, Any], index: int = 0, **extra: Any) -> dict[str, Any]:
    """The per-invocation stdin for one plugin of a list, as libcni builds it."""
    plugin = dict(conf_list["plugins"][index])
    plugin.pop("capabilities", None)
    return {**plugin, "cniVersion": conf_list["cniVersion"], "name": conf_list["name"], **extra}
