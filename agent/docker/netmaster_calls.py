"""The few netmaster calls the Docker driver makes itself (everything endpoint-related goes through
EndpointOps): look up networks and groups, reserve and release addresses for Docker's IPAM."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from contiv_api.netmaster_client import NetmasterError, NetmasterUnavailableError

# (method, path, body) -> decoded JSON; raises contiv_api.netmaster_client.NetmasterError
NetmasterCall = Callable[[str, str, Any], Any]


class DriverError(Exception):
    """Answered to Docker as ``{"Err": message}``."""


def _fail(exc: NetmasterError, what: str) -> DriverError:
    if isinstance(exc, NetmasterUnavailableError):
        return DriverError(f"{what}: netmaster unavailable, try again later ({exc.message})")
    if exc.status == 404:
        return DriverError(f"{exc.message} in netmaster")
    return DriverError(f"{what}: {exc.message}")


class NetmasterIpam:
    def __init__(self, call: NetmasterCall, owner: str) -> None:
        self.call, self.owner = call, owner

    def network(self, tenant: str, network: str) -> tuple[str, str]:
        """(subnet CIDR, gateway) of a Contiv network."""
        try:
            obj = self.call("GET", f"/api/v1/networks/{quote(f'{tenant}:{network}', safe=':')}/", None)
        except NetmasterError as exc:
            raise _fail(exc, f"network {tenant}:{network}") from None
        return normalize_subnet(obj["subnet"]), obj.get("gateway", "")

    def network_by_subnet(self, subnet: str) -> tuple[str, str]:
        """(tenant, network) of the one Contiv network with *subnet*."""
        try:
            nets = self.call("GET", "/api/v1/networks/", None)
        except NetmasterError as exc:
            raise _fail(exc, "networks") from None
        found = [(n["tenantName"], n["networkName"]) for n in nets if normalize_subnet(n["subnet"]) == subnet]
        if len(found) != 1:
            raise DriverError(f"{'no' if not found else 'more than one'} Contiv network has subnet {subnet}: "
                              "name it with --ipam-opt tenant=T --ipam-opt network=N")
        return found[0]

    def group_exists(self, tenant: str, group: str) -> None:
        try:
            self.call("GET", f"/api/v1/endpointGroups/{quote(f'{tenant}:{group}', safe=':')}/", None)
        except NetmasterError as exc:
            raise _fail(exc, f"endpoint group {tenant}:{group}") from None

    def reserve(self, tenant: str, network: str, address: str) -> dict[str, Any]:
        body = {"tenantName": tenant, "networkName": network, "owner": self.owner}
        if address:
            body["ipAddress"] = address
        try:
            return self.call("POST", "/api/v1/addressReservations/", body)
        except NetmasterError as exc:
            raise _fail(exc, "address reservation") from None

    def release(self, reservation_id: str) -> None:
        try:
            self.call("DELETE", f"/api/v1/addressReservations/{quote(reservation_id, safe=':')}/", None)
        except NetmasterError as exc:
            raise _fail(exc, f"release {reservation_id}") from None


def normalize_subnet(subnet: str) -> str:
    """Contiv's range form ``a.b.c.d-e.f.g.h/len`` -> the CIDR Docker knows."""
    start, _, rest = subnet.partition("-")
    length = subnet.rpartition("/")[2]
    return str(ipaddress.IPv4Network(f"{start.split('/')[0]}/{length}" if rest else subnet, strict=False))
