"""libnetwork's remote NetworkDriver and IpamDriver calls, over EndpointOps and netmaster.

IPAM without leaks: Docker asks for an address (RequestAddress) before it creates the endpoint, and
may abort in between. The address is therefore *reserved* in netmaster (owner: this host), and the
endpoint created by CreateEndpoint claims that reservation atomically (label
``io.contiv.reservation``). An abort makes Docker call ReleaseAddress, which releases the reservation;
a crashed Docker leaves an unclaimed reservation that netmaster expires. Deleting an endpoint frees
its address in netmaster; the ReleaseAddress that follows finds no reservation and changes nothing.

Every call validates its whole request before it touches anything, so a bad request has no effect.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import TYPE_CHECKING, Any

from agent.docker.netmaster_calls import DriverError, NetmasterIpam
from agent.docker.records import DockerEndpoint, DockerNetwork, DriverRecords
from agent.endpoint_ops import AddRequest, EndpointError
from contiv_api.netmaster_client import CLAIM_LABEL
from contiv_api.service_lb import label_problem

if TYPE_CHECKING:
    from agent.endpoint_ops import EndpointOps

LOG = logging.getLogger(__name__)

GENERIC = "com.docker.network.generic"
# An endpoint driver option ``label.KEY=VALUE`` (``docker run --network name=N,driver-opt=label.app=web``,
# or ``docker network connect --driver-opt``) becomes the endpoint's label KEY=VALUE: what services
# select providers by. Container labels (``docker run --label``) are not sent to network drivers: the
# agent reads them from dockerd when asked to (agent/docker/container_labels.py).
LABEL_OPTION = "label."
REQUEST_TYPE = "RequestAddressType"
GATEWAY_TYPE = "com.docker.network.gateway"
ADDRESS_SPACES = {"LocalDefaultAddressSpace": "contiv-local", "GlobalDefaultAddressSpace": "contiv-global"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def _str(req: dict[str, Any], key: str, required: bool = True) -> str:
    value = req.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DriverError(f"{key} must be a string")
    if required and not value:
        raise DriverError(f"{key} is required")
    return value


def _id(req: dict[str, Any], key: str) -> str:
    value = _str(req, key)
    if not _ID_RE.fullmatch(value):
        raise DriverError(f"{key} {value!r} is invalid")
    return value


def _dict(req: dict[str, Any], key: str) -> dict[str, Any]:
    value = req.get(key) or {}
    if not isinstance(value, dict):
        raise DriverError(f"{key} must be an object")
    return value


def _endpoint_labels(options: dict[str, Any]) -> dict[str, str]:
    """The ``label.KEY`` endpoint options as labels (docs/docker.md)."""
    labels: dict[str, str] = {}
    for option, value in options.items():
        if not option.startswith(LABEL_OPTION):
            continue
        key = option[len(LABEL_OPTION):]
        problem = label_problem(key, value)
        if problem:
            raise DriverError(f"endpoint option {option!r}: {problem}")
        labels[key] = value
    return labels


def _name(value: Any, what: str, required: bool = True) -> str:
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise DriverError(f"{what} {value!r} is not a valid name")
    return value


def _pool_id(tenant: str, network: str) -> str:
    return f"{tenant}:{network}"


def _split_pool(pool_id: str) -> tuple[str, str]:
    tenant, sep, network = pool_id.partition(":")
    if not sep:
        raise DriverError(f"unknown PoolID {pool_id!r}")
    return _name(tenant, "tenant"), _name(network, "network")


def _address(value: str, what: str) -> ipaddress.IPv4Interface:
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise DriverError(f"{what} {value!r} is not an address") from None
    if iface.version != 4:
        raise DriverError(f"{what} {value}: only IPv4 is supported")
    return iface  # type: ignore[return-value]


class DockerDriver:
    """One method per libnetwork call (``Plugin.Activate`` -> ``plugin_activate``); each takes the
    decoded request and returns the response object, or raises DriverError."""

    def __init__(self, ops: EndpointOps, ipam: NetmasterIpam, records: DriverRecords, scope: str = "global") -> None:
        self.ops, self.ipam, self.records, self.scope = ops, ipam, records, scope

    # -- handshake --------------------------------------------------------------------------------

    def plugin_activate(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"Implements": ["NetworkDriver", "IpamDriver"]}

    def network_get_capabilities(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"Scope": self.scope, "ConnectivityScope": "global"}

    # -- IPAM -------------------------------------------------------------------------------------

    def ipam_get_capabilities(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}

    def ipam_get_default_address_spaces(self, req: dict[str, Any]) -> dict[str, Any]:
        return dict(ADDRESS_SPACES)

    def ipam_request_pool(self, req: dict[str, Any]) -> dict[str, Any]:
        """The pool is a Contiv network: named by ``--ipam-opt tenant=T --ipam-opt network=N``, or found
        by its subnet (``--subnet``). Stateless: the same request always gives the same PoolID."""
        if req.get("V6"):
            raise DriverError("contiv IPAM: IPv6 pools are not supported")
        pool, sub_pool, options = _str(req, "Pool", False), _str(req, "SubPool", False), _dict(req, "Options")
        if sub_pool:
            raise DriverError("contiv IPAM: --ip-range is not supported (the Contiv network's pool is used)")
        if pool:
            pool = str(_address(pool, "Pool").network)
        if options.get("network"):
            tenant = _name(options.get("tenant") or "default", "tenant")
            network = _name(options["network"], "network")
        elif pool:
            tenant, network = self.ipam.network_by_subnet(pool)
        else:
            raise DriverError("contiv IPAM needs the Contiv network: --ipam-opt tenant=T --ipam-opt network=N, "
                              "or --subnet equal to its subnet")
        subnet, gateway = self.ipam.network(tenant, network)
        if pool and pool != subnet:
            raise DriverError(f"subnet {pool} is not the subnet of Contiv network {tenant}:{network} ({subnet})")
        data = {GATEWAY_TYPE: f"{gateway}/{subnet.split('/')[1]}"} if gateway else {}
        return {"PoolID": _pool_id(tenant, network), "Pool": subnet, "Data": data}

    def ipam_release_pool(self, req: dict[str, Any]) -> dict[str, Any]:
        _split_pool(_str(req, "PoolID"))
        return {}

    def ipam_request_address(self, req: dict[str, Any]) -> dict[str, Any]:
        tenant, network = _split_pool(_str(req, "PoolID"))
        address, options = _str(req, "Address", False), _dict(req, "Options")
        if address:
            address = str(_address(address, "Address").ip)
        subnet, gateway = self.ipam.network(tenant, network)
        length = subnet.split("/")[1]
        if options.get(REQUEST_TYPE) == GATEWAY_TYPE and gateway:
            if address and address != gateway:
                raise DriverError(f"gateway {address} differs from Contiv network {tenant}:{network}'s {gateway}")
            return {"Address": f"{gateway}/{length}", "Data": {}}
        resv = self.ipam.reserve(tenant, network, address)
        self.records.add_reservation(resv["reservationID"])
        return {"Address": f"{resv['ipAddress']}/{length}", "Data": {}}

    def ipam_release_address(self, req: dict[str, Any]) -> dict[str, Any]:
        tenant, network = _split_pool(_str(req, "PoolID"))
        ip = str(_address(_str(req, "Address"), "Address").ip)
        _, gateway = self.ipam.network(tenant, network)
        if ip == gateway:
            return {}
        reservation_id = f"{tenant}:{network}:{ip}"
        self.ipam.release(reservation_id)  # gone already if an endpoint claimed it: nothing happens
        self.records.drop_reservation(reservation_id)
        return {}

    # -- networks ---------------------------------------------------------------------------------

    def network_create_network(self, req: dict[str, Any]) -> dict[str, Any]:
        network_id = _id(req, "NetworkID")
        generic = _dict(_dict(req, "Options"), GENERIC)
        tenant = _name(generic.get("tenant") or "default", "tenant")
        network = _name(generic.get("network"), "network (-o network=N)")
        group = _name(generic.get("group"), "group", required=False)
        if req.get("IPv6Data"):
            raise DriverError("contiv: IPv6 is not supported")
        v4 = req.get("IPv4Data") or []
        if not isinstance(v4, list) or not all(isinstance(d, dict) for d in v4) or len(v4) > 1:
            raise DriverError("IPv4Data must be a list of at most one pool")
        subnet, gateway = self.ipam.network(tenant, network)
        if group:
            self.ipam.group_exists(tenant, group)
        if v4:
            pool = str(_address(_str(v4[0], "Pool"), "Pool").network)
            if pool != subnet:
                raise DriverError(f"subnet {pool} is not the subnet of Contiv network {tenant}:{network} ({subnet})")
            gw = _str(v4[0], "Gateway", False)
            if gw and gateway and str(_address(gw, "Gateway").ip) != gateway:
                raise DriverError(f"gateway {gw} differs from Contiv network {tenant}:{network}'s {gateway}")
        self.records.put_network(DockerNetwork(network_id, tenant, network, group, subnet, gateway))
        LOG.info("docker network %s -> %s:%s group %r", network_id[:12], tenant, network, group)
        return {}

    def network_delete_network(self, req: dict[str, Any]) -> dict[str, Any]:
        self.records.drop_network(_id(req, "NetworkID"))
        return {}

    def network_allocate_network(self, req: dict[str, Any]) -> dict[str, Any]:
        _id(req, "NetworkID")
        return {"Options": {}}

    def network_free_network(self, req: dict[str, Any]) -> dict[str, Any]:
        _id(req, "NetworkID")
        return {}

    def _network(self, req: dict[str, Any]) -> DockerNetwork:
        network_id = _id(req, "NetworkID")
        net = self.records.networks.get(network_id)
        if net is None:
            raise DriverError(f"network {network_id} is not a contiv network known to this host")
        return net

    # -- endpoints --------------------------------------------------------------------------------

    def network_create_endpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        net = self._network(req)
        endpoint_id = _id(req, "EndpointID")
        iface = _dict(req, "Interface")
        if _str(iface, "AddressIPv6", False):
            raise DriverError("contiv: IPv6 is not supported")
        address, mac = _str(iface, "Address", False), _str(iface, "MacAddress", False)
        ip = ""
        if address:
            given = _address(address, "Interface.Address")
            if str(given.network) != net.subnet:
                raise DriverError(f"address {address} is outside {net.subnet}")
            ip = str(given.ip)
        user_labels = _endpoint_labels(_dict(req, "Options"))
        reservation = f"{net.tenant}:{net.network}:{ip}"
        claim = {CLAIM_LABEL: reservation} if ip and reservation in self.records.reservations else {}
        labels = {**user_labels, **claim}
        try:
            res = self.ops.add(AddRequest(endpoint_id=endpoint_id, tenant=net.tenant, network=net.network,
                                          group=net.group, netns=None, requested_ip=ip, labels=labels))
        except EndpointError as exc:
            raise DriverError(f"create endpoint: {exc.message}") from None
        if mac and mac.lower() != res.mac:
            self.ops.delete(endpoint_id)
            raise DriverError(f"MAC address {mac} cannot be used: contiv endpoints use {res.mac}")
        if claim:
            self.records.drop_reservation(reservation)
        self.records.put_endpoint(DockerEndpoint(endpoint_id, net.network_id, res.ip, res.prefix_len, res.mac,
                                                 res.gateway, res.host_ifname, res.container_ifname, res.mtu,
                                                 labels=user_labels))
        # Docker keeps what it supplied (the address); anything else it must learn from us.
        out: dict[str, Any] = {} if mac else {"MacAddress": res.mac}
        if not address:
            out["Address"] = f"{res.ip}/{res.prefix_len}"
        return {"Interface": out}

    def network_delete_endpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        _id(req, "NetworkID")
        endpoint_id = _id(req, "EndpointID")
        try:
            self.ops.delete(endpoint_id)
        except EndpointError as exc:
            raise DriverError(f"delete endpoint: {exc.message}") from None
        self.records.drop_endpoint(endpoint_id)
        return {}

    def _endpoint(self, req: dict[str, Any]) -> DockerEndpoint:
        self._network(req)
        endpoint_id = _id(req, "EndpointID")
        ep = self.records.endpoints.get(endpoint_id)
        if ep is None:
            raise DriverError(f"endpoint {endpoint_id} not found")
        return ep

    def network_endpoint_oper_info(self, req: dict[str, Any]) -> dict[str, Any]:
        ep = self._endpoint(req)
        return {"Value": {"ipAddress": f"{ep.ip}/{ep.prefix_len}", "macAddress": ep.mac, "gateway": ep.gateway,
                          "hostInterface": ep.host_ifname, "mtu": ep.mtu}}

    def network_join(self, req: dict[str, Any]) -> dict[str, Any]:
        ep = self._endpoint(req)
        _str(req, "SandboxKey")
        return {"InterfaceName": {"SrcName": ep.container_ifname, "DstPrefix": "eth"},
                "Gateway": ep.gateway, "GatewayIPv6": "", "StaticRoutes": [],
                # Without a gateway the container stays on the Contiv network only (no docker_gwbridge).
                "DisableGatewayService": not ep.gateway}

    def network_leave(self, req: dict[str, Any]) -> dict[str, Any]:
        self._endpoint(req)
        return {}

    def network_program_external_connectivity(self, req: dict[str, Any]) -> dict[str, Any]:
        self._endpoint(req)
        return {}  # no port mapping or NAT: Contiv networks are routed, not published through the host

    def network_revoke_external_connectivity(self, req: dict[str, Any]) -> dict[str, Any]:
        _id(req, "NetworkID")
        _id(req, "EndpointID")
        return {}

    def network_discover_new(self, req: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(req.get("DiscoveryType", 0), int):
            raise DriverError("DiscoveryType must be an integer")
        return {}  # hosts come from netmaster, not from Docker

    network_discover_delete = network_discover_new


ROUTES = {
    "/Plugin.Activate": "plugin_activate",
    **{f"/NetworkDriver.{name}": "network_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
       for name in ("GetCapabilities", "CreateNetwork", "DeleteNetwork", "AllocateNetwork", "FreeNetwork",
                    "CreateEndpoint", "DeleteEndpoint", "EndpointOperInfo", "Join", "Leave",
                    "ProgramExternalConnectivity", "RevokeExternalConnectivity", "DiscoverNew", "DiscoverDelete")},
    **{f"/IpamDriver.{name}": "ipam_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
       for name in ("GetCapabilities", "GetDefaultAddressSpaces", "RequestPool", "ReleasePool", "RequestAddress",
                    "ReleaseAddress")},
}
