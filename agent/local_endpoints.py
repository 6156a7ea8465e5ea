"""This host's endpoint records: what only the agent knows about a local endpoint.

netmaster knows an endpoint's address, group and host; it does not know the container's network
namespace, the interface name inside it or the veth names. The agent keeps those here, one JSON file
per endpoint under its state directory, so a restarted agent still knows which namespace to plumb
(and a runtime's DEL or CHECK after the restart finds the endpoint). Files are replaced atomically.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class EndpointSpec:
    """What a runtime (CNI, Docker, the agent's endpoint API) says about the container an endpoint is
    for: both an add request and the record kept afterwards start with it."""

    endpoint_id: str
    tenant: str
    network: str
    group: str = ""
    container_id: str = ""
    container_name: str = ""
    netns: str | None = None  # None: the container end stays in the host namespace (Docker moves it)
    ifname: str = "eth0"
    labels: dict[str, str] = field(default_factory=dict)

    def spec_fields(self) -> dict[str, Any]:
        """This object's spec part as keyword arguments (labels copied), to build the other kind from."""
        return {**{f.name: getattr(self, f.name) for f in fields(EndpointSpec)}, "labels": dict(self.labels)}


@dataclass(frozen=True)
class LocalEndpoint(EndpointSpec):
    """An endpoint of this host as plumbed: the spec, plus what netmaster allocated and the veth names."""

    host_ifname: str = ""
    container_ifname: str = ""
    ip: str = ""
    prefix_len: int = 0
    mac: str = ""
    gateway: str = ""
    mtu: int = 0
    vlan: int = 0
    vni: int = 0
    group_id: int = 0


class LocalEndpointStore:
    """Thread-safe directory of :class:`LocalEndpoint` records (one file each, so a crash mid-write
    can only lose the record being written, never the others). Read once at start and kept in memory
    (every reconcile reads them); every change is written through."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._records = self._load()

    def _path(self, endpoint_id: str) -> Path:
        return self.dir / (quote(endpoint_id, safe="") + ".json")

    def put(self, record: LocalEndpoint) -> None:
        path = self._path(record.endpoint_id)
        tmp = path.with_suffix(".tmp")
        with self._lock:
            tmp.write_text(json.dumps(asdict(record), sort_keys=True))
            os.replace(tmp, path)
            self._records[record.endpoint_id] = record

    def get(self, endpoint_id: str) -> LocalEndpoint | None:
        with self._lock:
            return self._records.get(endpoint_id)

    def delete(self, endpoint_id: str) -> bool:
        with self._lock:
            self._path(endpoint_id).unlink(missing_ok=True)
            return self._records.pop(endpoint_id, None) is not None

    def all(self) -> dict[str, LocalEndpoint]:
        with self._lock:
            return dict(self._records)

    def _load(self) -> dict[str, LocalEndpoint]:
        out = {}
        for path in sorted(self.dir.glob("*.json")):
            try:
                record = LocalEndpoint(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue  # not ours, or damaged: never guess an endpoint's namespace
            if unquote(path.stem) == record.endpoint_id:
                out[record.endpoint_id] = record
        return out
