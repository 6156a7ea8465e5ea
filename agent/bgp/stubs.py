"""gobgpd's gRPC API for Python, generated from the .proto files Debian ships, never committed.

Debian's ``golang-github-osrg-gobgp-dev`` carries gobgp's ``api/*.proto`` for the same version as its
``gobgpd`` (3.10 on Debian 12), so the stubs always match the daemon they talk to. They are compiled
with grpcio-tools (``scripts/setup`` runs ``python -m agent.bgp.stubs`` once; the agent calls
:func:`load`, which compiles them on first use if setup has not) into a cache directory keyed by a
hash of the protos and the grpcio-tools version, so an upgrade of either regenerates them.

Why generated rather than a PyPI client: the PyPI packages for gobgp are unmaintained and pinned to
old API versions (gobgp's API changed incompatibly between 2.x and 3.x).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

PROTO_DIR = Path(os.environ.get("CONTIV_GOBGP_PROTO_DIR", "/usr/share/gocode/src/github.com/osrg/gobgp/api"))
CACHE_DIR = Path(os.environ.get("CONTIV_GOBGP_STUBS_DIR", "/var/lib/contiv/gobgp-api"))
PROTOS = ("gobgp.proto", "attribute.proto", "capability.proto")


class GobgpApi(NamedTuple):
    pb: ModuleType  # gobgp_pb2: requests, responses, Peer, Path, ...
    attrs: ModuleType  # attribute_pb2: NLRIs and path attributes (packed into Any)
    grpc: ModuleType  # gobgp_pb2_grpc: GobgpApiStub


class StubsUnavailableError(RuntimeError):
    """The protos or grpcio-tools are missing: BGP cannot run on this host (the message says why)."""


def _target() -> Path:
    try:
        tools = version("grpcio-tools")
    except PackageNotFoundError as exc:
        raise StubsUnavailableError("grpcio-tools is not installed (pip install grpcio-tools)") from exc
    digest = hashlib.sha256(tools.encode())
    for name in PROTOS:
        path = PROTO_DIR / name
        if not path.exists():
            raise StubsUnavailableError(f"{path} missing: install Debian's golang-github-osrg-gobgp-dev")
        digest.update(path.read_bytes())
    return CACHE_DIR / digest.hexdigest()[:16]


def generate() -> Path:
    """Compile the stubs into the cache (once; later calls find them) and return their directory."""
    target = _target()
    if (target / "gobgp_pb2_grpc.py").exists():
        return target
    from grpc_tools import protoc

    target.parent.mkdir(parents=True, exist_ok=True)
    # Compile into a fresh directory and rename it into place: two processes generating at once
    # (an agent and setup) never see half a set.
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".gen-"))
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    args = ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={work}", f"--grpc_python_out={work}",
            *(str(PROTO_DIR / p) for p in PROTOS)]
    if protoc.main(args) != 0:
        raise StubsUnavailableError(f"protoc failed on {PROTO_DIR}")
    try:
        work.rename(target)
    except OSError:  # another process won the race: its copy is identical
        shutil.rmtree(work, ignore_errors=True)
    return target


def load() -> GobgpApi:
    """The generated modules (generating them first if needed). The protos import each other by file
    name (``import "attribute.proto"``), so their directory goes on ``sys.path``."""
    path = str(generate())
    if path not in sys.path:
        sys.path.append(path)
    return GobgpApi(importlib.import_module("gobgp_pb2"), importlib.import_module("attribute_pb2"),
                    importlib.import_module("gobgp_pb2_grpc"))


if __name__ == "__main__":
    print(generate())
