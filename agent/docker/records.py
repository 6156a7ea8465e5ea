"""What the Docker driver must remember across agent restarts, in one JSON file.

Docker tells the driver about a network once (CreateNetwork) and later refers to it by id only, so
the id -> tenant/network/group mapping must survive a restart; so must the endpoints' Join data and
the IPAM reservations not yet claimed by an endpoint. Every change rewrites the file atomically.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DockerNetwork:
    network_id: str
    tenant: str
    network: str
    group: str
    subnet: str
    gateway: str


@dataclass(frozen=True)
class DockerEndpoint:
    endpoint_id: str
    network_id: str
    ip: str
    prefix_len: int
    mac: str
    gateway: str
    host_ifname: str
    container_ifname: str
    mtu: int
    labels: dict[str, str] = field(default_factory=dict)  # from driver options (label.KEY=VALUE)


class DriverRecords:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.networks: dict[str, DockerNetwork] = {}
        self.endpoints: dict[str, DockerEndpoint] = {}
        self.reservations: set[str] = set()
        if self.path.exists():
            data = json.loads(self.path.read_text())
            self.networks = {k: DockerNetwork(**v) for k, v in data.get("networks", {}).items()}
            self.endpoints = {k: DockerEndpoint(**v) for k, v in data.get("endpoints", {}).items()}
            self.reservations = set(data.get("reservations", []))

    def _save(self) -> None:
        data: dict[str, Any] = {"networks": {k: asdict(v) for k, v in self.networks.items()},
                                "endpoints": {k: asdict(v) for k, v in self.endpoints.items()},
                                "reservations": sorted(self.reservations)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)

    def put_network(self, net: DockerNetwork) -> None:
        with self._lock:
            self.networks[net.network_id] = net
            self._save()

    def drop_network(self, network_id: str) -> None:
        with self._lock:
            if self.networks.pop(network_id, None) is not None:
                self._save()

    def put_endpoint(self, ep: DockerEndpoint) -> None:
        with self._lock:
            self.endpoints[ep.endpoint_id] = ep
            self._save()

    def drop_endpoint(self, endpoint_id: str) -> None:
        with self._lock:
            if self.endpoints.pop(endpoint_id, None) is not None:
                self._save()

    def add_reservation(self, reservation_id: str) -> None:
        with self._lock:
            self.reservations.add(reservation_id)
            self._save()

    def drop_reservation(self, reservation_id: str) -> bool:
        with self._lock:
            if reservation_id not in self.reservations:
                return False
            self.reservations.discard(reservation_id)
            self._save()
            return True
