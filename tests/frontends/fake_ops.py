"""An in-memory EndpointOps for protocol tests: the real interface (agent.endpoint_ops' request,
result and error types), no datapath. It records every call, so tests can prove that rejected
requests reached nothing."""

from __future__ import annotations

import ipaddress
import threading

from agent.endpoint_ops import AddRequest, AddResult, EndpointError
from agent.local_endpoints import LocalEndpoint
from contiv_api.mac import candidates

__all__ = ["AddRequest", "EndpointError", "FakeEndpointOps"]


class FakeEndpointOps:
    """Networks are ``tenant:name`` -> subnet; addresses are handed out from .1 upwards."""

    def __init__(self, networks: dict[str, str] | None = None, gateway_octet: int = 254) -> None:
        self.networks = networks if networks is not None else {"default:net1": "10.9.0.0/24"}
        self.gateway_octet = gateway_octet
        self.endpoints: dict[str, tuple[AddRequest, AddResult]] = {}
        self.calls: list[tuple[str, object]] = []
        self.ready: tuple[bool, str] = (True, "ok")
        self.fail_with: EndpointError | None = None
        self.broken: set[str] = set()  # endpoint ids whose check fails
        self._lock = threading.Lock()

    def add(self, req: AddRequest) -> AddResult:
        self.calls.append(("add", req))
        if self.fail_with:
            raise self.fail_with
        key = f"{req.tenant}:{req.network}"
        if key not in self.networks:
            raise EndpointError("not_found", f"network {key} not found")
        with self._lock:
            if req.endpoint_id in self.endpoints:
                return self.endpoints[req.endpoint_id][1]
            net = ipaddress.IPv4Network(self.networks[key])
            used = {r.ip for _, r in self.endpoints.values()}
            if req.requested_ip:
                if req.requested_ip in used or ipaddress.IPv4Address(req.requested_ip) not in net:
                    raise EndpointError("conflict", f"address {req.requested_ip} is not available")
                ip = req.requested_ip
            else:
                ip = next(str(a) for a in net.hosts() if str(a) not in used)
            gw = str(net.network_address + self.gateway_octet)
            mac = next(candidates(ip))  # netmaster's rule, first choice (the fake has one tenant per address)
            res = AddResult(req.endpoint_id, ip, net.prefixlen, mac, gw, req.ifname, "ve" + req.endpoint_id[:11],
                            req.ifname, 1450, req.netns, 0, 5001, 0)
            self.endpoints[req.endpoint_id] = (req, res)
            return res

    def delete(self, endpoint_id: str) -> bool:
        self.calls.append(("delete", endpoint_id))
        if self.fail_with:
            raise self.fail_with
        with self._lock:
            return self.endpoints.pop(endpoint_id, None) is not None

    def check(self, endpoint_id: str) -> None:
        self.calls.append(("check", endpoint_id))
        if endpoint_id not in self.endpoints:
            raise EndpointError("not_found", f"endpoint {endpoint_id} not found")
        if endpoint_id in self.broken:
            raise EndpointError("not_found", f"endpoint {endpoint_id}: interface missing")

    def list_local(self) -> list[LocalEndpoint]:
        self.calls.append(("list_local", None))
        return [LocalEndpoint(i, q.tenant, q.network, q.group, q.container_id, netns=q.netns, ifname=q.ifname,
                              ip=r.ip) for i, (q, r) in self.endpoints.items()]

    def status(self) -> tuple[bool, str]:
        self.calls.append(("status", None))
        return self.ready

    def mutations(self) -> list[tuple[str, object]]:
        return [c for c in self.calls if c[0] in ("add", "delete")]
