"""Bridge, port and interface management over one persistent OVSDB connection (ovsdbapp).

The agent owns one integration bridge. It is created in secure fail mode (with no controller the switch
keeps its flows and forwards nothing new on its own: a restarting agent leaves traffic alone) and
OpenFlow 1.3 only. Ports get an explicit ``ofport_request`` so their OpenFlow numbers are chosen by the
agent and survive restarts, which keeps the flow set of a restarted agent identical to the old one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ovsdbapp.backend.ovs_idl import command, connection, idlutils, transaction
from ovsdbapp.schema.open_vswitch import impl_idl

LOG = logging.getLogger(__name__)

# external_ids keys written by the agent
EXT_ENDPOINT = "contiv-endpoint-id"
EXT_ROLE = "contiv-role"
EXT_ROUND = "contiv-flow-round"

# What the agent's OVSDB replica holds: the tables its commands touch, without the columns
# ovs-vswitchd rewrites on its own (counters every few seconds, per-interface status and link
# details on every port change, controller status). The Python IDL parses every update of every
# monitored column in pure Python, on the same interpreter that answers CNI calls: with the whole
# schema monitored, parsing ovs-vswitchd's own writes was half the agent's CPU during a burst of ADDs.
MONITORED_TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller")
UNMONITORED_COLUMNS = {
    "Open_vSwitch": {"statistics"},
    "Bridge": {"status", "rstp_status"},
    "Port": {"statistics", "status", "rstp_statistics", "rstp_status"},
    "Interface": {"statistics", "status", "admin_state", "duplex", "link_resets", "link_speed", "mtu",
                  "mac_in_use", "ifindex", "lacp_current", "bfd_status", "cfm_fault", "cfm_fault_status",
                  "cfm_flap_count", "cfm_health", "cfm_remote_mpids", "cfm_remote_opstate"},
    "Controller": {"status", "is_connected", "role"},
}


@dataclass(frozen=True)
class PortInfo:
    name: str
    ofport: int
    type: str
    external_ids: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PortSpec:
    """A port to add: its interface's name, requested ofport, type, options and external_ids."""

    name: str
    ofport: int
    type: str = ""
    options: dict[str, str] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    mac: str = ""  # internal ports: the MAC OVS gives the device
    mtu: int = 0  # the interface's mtu_request (OVS owns an internal port's MTU)


class Ovsdb:
    """Thin, typed façade over ovsdbapp for what the agent needs."""

    def __init__(self, remote: str, timeout: float = 10.0) -> None:
        self.remote = remote
        helper = idlutils.get_schema_helper(remote, "Open_vSwitch")
        for table in MONITORED_TABLES:
            columns = helper.schema_json["tables"][table]["columns"]
            helper.register_columns(table, [c for c in columns if c not in UNMONITORED_COLUMNS[table]])
        idl = connection.OvsdbIdl(remote, helper)
        self._conn = connection.Connection(idl=idl, timeout=timeout)
        self.api = impl_idl.OvsdbIdl(self._conn, auto_index=False)

    def close(self) -> None:
        self._conn.stop()

    def ensure_bridge(self, name: str, datapath_type: str, controller: str, datapath_id: int) -> None:
        """Create or converge the integration bridge (idempotent), with the datapath id its controller
        accepts."""
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_br(name, may_exist=True, datapath_type=datapath_type))
            txn.add(self.api.db_set("Bridge", name, ("fail_mode", "secure"),
                                    ("protocols", ["OpenFlow13"]),
                                    ("other_config", {"disable-in-band": "true",
                                                      "datapath-id": f"{datapath_id:016x}"})))
            txn.add(self.api.set_controller(name, [controller]))
        # An idle controller connection must not be probed away while a big resync is encoded.
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.db_set("Controller", self._controller_uuid(name),
                                    ("inactivity_probe", 0), ("max_backoff", 1000)))

    def _controller_uuid(self, bridge: str) -> Any:
        br = self.api.db_get("Bridge", bridge, "controller").execute(check_error=True)
        return br[0] if isinstance(br, list) else br

    def set_flow_restore_wait(self, on: bool) -> None:
        """While true, a (re)starting ovs-vswitchd keeps its datapath flows and does not flush the
        OpenFlow tables; the agent clears it after its first full sync."""
        if on:
            cmd = self.api.db_set("Open_vSwitch", ".", ("other_config", {"flow-restore-wait": "true"}))
        else:
            cmd = self.api.db_remove("Open_vSwitch", ".", "other_config", "flow-restore-wait",
                                     if_exists=True)
        cmd.execute(check_error=True)

    def flow_restore_wait(self) -> bool:
        (cfg,) = self._read(self.api.db_get("Open_vSwitch", ".", "other_config"))
        return cfg.get("flow-restore-wait") == "true"

    def bridge_external_id(self, bridge: str, key: str) -> str | None:
        (ids,) = self._read(self.api.db_get("Bridge", bridge, "external_ids"))
        return ids.get(key)

    def set_bridge_external_id(self, bridge: str, key: str, value: str) -> None:
        self.api.br_set_external_id(bridge, key, value).execute(check_error=True)

    def _read(self, *commands: Any) -> list[Any]:
        """Run read-only commands against the local replica, in the caller's thread, under the
        connection's lock (one snapshot for all of them). Not through a transaction: ovsdbapp's
        Open_vSwitch transaction bumps ``next_cfg`` and waits for ovs-vswitchd to reconfigure, as
        ovs-vsctl does (right for a change, pure cost for a read), and any transaction queues for
        the connection thread, two thread hand-offs per read on the endpoint path."""
        with self._conn.lock:
            out = []
            for command in commands:
                command.run_idl(None)
                out.append(command.result)
            return out

    def ports(self, bridge: str) -> dict[str, PortInfo]:
        """Ports of *bridge* by name with their interface's ofport, type and external_ids."""
        port_names, rows = self._read(
            self.api.list_ports(bridge),
            self.api.db_list("Interface", columns=["name", "ofport", "type", "external_ids", "options"]))
        names = set(port_names)
        out = {}
        for row in rows:
            if row["name"] not in names:
                continue
            out[row["name"]] = PortInfo(row["name"], _ofport(row["ofport"]), row["type"], dict(row["external_ids"]),
                                        dict(row["options"]))
        return out

    def interface_ofports(self, names: list[str] | None = None) -> dict[str, int]:
        """Interface name -> ofport (-1 while unassigned or failed), for those of *names* that exist, or
        for every interface: two attributes of the replica's rows (``db_list`` converts each column of
        each row through ovsdbapp's generic path: milliseconds with a few dozen ports, and the
        endpoint path reads this on every ADD)."""
        (ofports,) = self._read(_InterfaceOfports(self.api, names))
        return ofports

    def wait_ofport(self, name: str, timeout: float = 10.0) -> int:
        """``wait_ofports`` for one interface, returning its ofport (reads just that interface)."""
        deadline = time.monotonic() + timeout
        while True:
            ofport = self.interface_ofports([name]).get(name, -1)
            if ofport > 0:
                return ofport
            if time.monotonic() > deadline:
                error = self.api.db_get("Interface", name, "error").execute(check_error=False)
                raise TimeoutError(f"port {name} not ready: {error}")
            time.sleep(0.005)

    def add_port(self, bridge: str, name: str, ofport: int, type_: str = "",
                 options: dict[str, str] | None = None, external_ids: dict[str, str] | None = None,
                 mac: str = "", mtu: int = 0) -> None:
        """Add a port with its interface; converge the interface columns if it already exists."""
        self.add_ports(bridge, [PortSpec(name, ofport, type_, options or {}, external_ids or {}, mac, mtu)])

    def add_ports(self, bridge: str, specs: list[PortSpec]) -> None:
        """``add_port`` for several ports in one transaction (a burst of endpoint adds)."""
        with self.api.transaction(check_error=True) as txn:
            for spec in specs:
                attrs: list[tuple[str, Any]] = [("ofport_request", spec.ofport), ("type", spec.type),
                                                ("external_ids", spec.external_ids)]
                if spec.options:
                    attrs.append(("options", spec.options))
                if spec.mac:
                    attrs.append(("mac", spec.mac))
                if spec.mtu:
                    attrs.append(("mtu_request", spec.mtu))
                txn.add(self.api.add_port(bridge, spec.name, may_exist=True))
                txn.add(self.api.db_set("Interface", spec.name, *attrs))

    def add_internal_port(self, bridge: str, name: str, mac: str, external_ids: dict[str, str],
                          ofport: int | None = None) -> None:
        """An internal port (a device in the agent's namespace) with a fixed MAC, at *ofport* (else OVS
        picks one: the lowest free number, which a bond member or the host port may want later)."""
        attrs: list[tuple[str, Any]] = [("type", "internal"), ("mac", mac), ("external_ids", external_ids)]
        if ofport is not None:
            attrs.append(("ofport_request", ofport))
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_port(bridge, name, may_exist=True))
            txn.add(self.api.db_set("Interface", name, *attrs))

    def ensure_bond(self, bridge: str, name: str, members: dict[str, int], lacp: str,
                    external_ids: dict[str, str]) -> bool:
        """Converge an active-backup bond port *name* with *members* (interface name -> ofport).

        An unchanged bond is left alone (an agent restart must not bounce the uplink). Otherwise the
        bond, and any port of a member's name (a single uplink of an earlier configuration), is
        removed first, then the bond is created with its interfaces in one transaction. LACP off
        suits a plain switch; with LACP on, a partner that does not answer LACP makes the bond fall
        back to active-backup (``lacp-fallback-ab``) instead of disabling every member. Returns
        whether it changed."""
        other = {"lacp-time": "fast", "lacp-fallback-ab": "true"}
        want = {"bond_mode": "active-backup", "lacp": lacp, "members": members, "external_ids": external_ids,
                "other_config": other}
        if self._bond_config(bridge, name) == want:
            return False
        with self.api.transaction(check_error=True) as txn:
            for port in (name, *members):
                txn.add(self.api.del_port(port, bridge=bridge, if_exists=True))
        with self.api.transaction(check_error=True) as txn:
            ifaces = [txn.add(self.api.db_create("Interface", name=member, ofport_request=ofport))
                      for member, ofport in members.items()]
            port = txn.add(self.api.db_create("Port", name=name, interfaces=ifaces, bond_mode="active-backup",
                                              lacp=lacp, external_ids=external_ids,
                                              other_config=other))
            txn.add(self.api.db_add("Bridge", bridge, "ports", port))
        return True

    def _bond_config(self, bridge: str, name: str) -> dict[str, Any] | None:
        if name not in self.api.list_ports(bridge).execute(check_error=True):
            return None
        rows = self.api.db_find("Port", ("name", "=", name),
                                columns=["bond_mode", "lacp", "interfaces", "external_ids", "other_config"]
                                ).execute(check_error=True)
        if not rows:
            return None
        row = rows[0]
        members = {}
        for uuid in row["interfaces"]:
            iface = self.api.db_get("Interface", uuid, "name").execute(check_error=True)
            req = self.api.db_get("Interface", uuid, "ofport_request").execute(check_error=True)
            members[iface] = req[0] if isinstance(req, list) and req else req
        mode = row["bond_mode"]
        lacp = row["lacp"]
        return {"bond_mode": mode[0] if isinstance(mode, list) and mode else mode,
                "lacp": lacp[0] if isinstance(lacp, list) and lacp else lacp,
                "members": members, "external_ids": dict(row["external_ids"]),
                "other_config": dict(row["other_config"])}

    def link_states(self, names: tuple[str, ...]) -> dict[str, str]:
        """Interface ``link_state`` as ovs-vswitchd reports it (``up``/``down``; '' while unknown)."""
        rows = self.api.db_list("Interface", names, columns=["name", "link_state"], if_exists=True).execute(
            check_error=True)
        out = {}
        for row in rows:
            state = row["link_state"]
            out[row["name"]] = (state[0] if state else "") if isinstance(state, list) else state
        return out

    def del_port(self, bridge: str, name: str) -> None:
        self.del_ports(bridge, [name])

    def del_ports(self, bridge: str, names: list[str], wait_for_switch: bool = True) -> None:
        """Remove ports *names* (those that exist). With *wait_for_switch* off the call returns once
        OVSDB has committed, not once ovs-vswitchd has reconfigured for it: a caller that deletes the
        ports' devices next lets ovs-vswitchd take both changes in one pass (and never see a port
        whose device is gone)."""
        pending = self.api.transaction(check_error=True) if wait_for_switch else \
            transaction.Transaction(self.api, self._conn, check_error=True)
        with pending as txn:
            for name in names:
                txn.add(self.api.del_port(name, bridge=bridge, if_exists=True))

    def wait_ofports(self, bridge: str, names: set[str], timeout: float = 10.0) -> dict[str, PortInfo]:
        """Wait until ovs-vswitchd has opened *names* (ofport assigned) and return all ports.

        An interface that could not be opened gets ofport -1 and an error column: waiting on it would
        hide the real problem, so the error is raised."""
        deadline = time.monotonic() + timeout
        while True:
            ports = self.ports(bridge)
            missing = {n for n in names if n not in ports or ports[n].ofport <= 0}
            if not missing:
                return ports
            if time.monotonic() > deadline:
                errors = {n: self.api.db_get("Interface", n, "error").execute(check_error=False)
                          for n in missing}
                raise TimeoutError(f"ports not ready on {bridge}: {errors}")
            time.sleep(0.005)


class _InterfaceOfports(command.ReadOnlyCommand):
    """name -> ofport of the Interface rows named *names* (every row if None), read from the replica."""

    def __init__(self, api: Any, names: list[str] | None) -> None:
        super().__init__(api)
        self.names = None if names is None else set(names)

    def run_idl(self, txn: Any) -> None:
        names = self.names
        self.result = {row.name: _ofport(row.ofport) for row in self.api.tables["Interface"].rows.values()
                       if names is None or row.name in names}


def _ofport(value: Any) -> int:
    """The ofport column's value (an optional integer: a list while unset) as an int, -1 if unset."""
    value = value[0] if isinstance(value, list) and value else value
    return int(value) if isinstance(value, int) else -1
