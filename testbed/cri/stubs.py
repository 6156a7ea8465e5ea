"""CRI's gRPC stubs, generated from ``api.proto`` (Kubernetes' ``k8s.io/cri-api``, runtime/v1) with
grpcio-tools on first use, into a cache directory keyed by the proto's hash.

Why generate instead of committing generated code or using a package that ships it: generated
``_pb2`` modules are tied to the protobuf runtime that made them (older ones refuse to load on
protobuf 4+), so they are made by the grpcio-tools installed next to the protobuf in use. Why not
PyPI's ``zun`` (``zun.criapi``): its stubs are of the old v1alpha2 API and it brings OpenStack's
dependencies with it.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).with_name("api.proto")


def _cache_dir() -> Path:
    """Keyed by the proto and by the protobuf and gRPC runtimes: generated code must match the
    runtime that loads it, and another environment on the machine may have other versions."""
    import grpc
    from google.protobuf import __version__ as protobuf_version

    key = PROTO.read_bytes() + f"{protobuf_version} {grpc.__version__}".encode()
    return Path(tempfile.gettempdir()) / f"contiv-cri-stubs-{hashlib.sha256(key).hexdigest()[:16]}"


def load() -> tuple[ModuleType, ModuleType]:
    """(api_pb2, api_pb2_grpc), generating them when the cache has none."""
    out = _cache_dir()
    if not (out / "api_pb2_grpc.py").exists():
        from grpc_tools import protoc  # only needed to generate

        tmp = Path(tempfile.mkdtemp(prefix=out.name + "."))
        code = protoc.main(["grpc_tools.protoc", f"-I{PROTO.parent}", f"--python_out={tmp}",
                            f"--grpc_python_out={tmp}", str(PROTO)])
        if code != 0:
            raise RuntimeError(f"protoc failed on {PROTO} (exit {code})")
        try:
            tmp.rename(out)
        except OSError:  # another process generated them first
            pass
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return importlib.import_module("api_pb2"), importlib.import_module("api_pb2_grpc")
