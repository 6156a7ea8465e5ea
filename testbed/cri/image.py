"""The pod sandbox ("pause") image, made from busybox-static: there is no image registry here, and
containerd's CRI needs its sandbox image in its own image store before the first RunPodSandbox."""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import tarfile
from pathlib import Path

SANDBOX_IMAGE = "localhost/contiv-sandbox:1"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _layer(busybox: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "proc", "sys", "dev", "etc", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(str(busybox), "bin/busybox")
        for applet in ("sh", "sleep"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buf.getvalue()


def sandbox_archive(path: Path, name: str = SANDBOX_IMAGE) -> Path:
    """Write a Docker-format image archive (what ``ctr images import`` reads) whose one process sleeps:
    a sandbox only holds the pod's namespaces, and StopPodSandbox kills it with SIGKILL."""
    layer = _layer(Path(shutil.which("busybox") or "/bin/busybox"))
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": _ARCH, "os": "linux",
                         "config": {"Entrypoint": ["/bin/sleep", "1000000000"], "WorkingDir": "/"},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [name], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for member, data in (("layer.tar", layer), (config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
