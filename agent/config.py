"""Agent configuration (the daemon's flags, Contiv's names where they exist)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AgentConfig:
    host_label: str
    ovsdb: str = "unix:/var/run/openvswitch/db.sock"
    bridge: str = "contivbr"
    datapath_type: str = "netdev"  # "system" with the kernel module; "netdev" is userspace
    of_socket: str = ""  # the controller socket the bridge connects to; "" = see controller_socket
    vtep_ip: str = ""  # VXLAN tunnel source; empty: no VXLAN on this host
    vlan_uplinks: tuple[str, ...] = field(default_factory=tuple)  # trunk interfaces for VLAN networks
    underlay_mtu: int = 1500  # VXLAN endpoints get this minus 50
    bond_name: str = "uplink-bond"  # the OVS port bonding several vlan_uplinks
    bond_lacp: str = "off"  # LACP on the bond: off, active or passive

    @property
    def ovs_rundir(self) -> str:
        """OVS's run directory: the directory of a ``unix:`` OVSDB remote, else /var/run/openvswitch
        (ovs-vswitchd's pid file and control socket are there)."""
        rundir = os.path.dirname(self.ovsdb[len("unix:"):]) if self.ovsdb.startswith("unix:") else ""
        return rundir or "/var/run/openvswitch"

    @property
    def controller_socket(self) -> str:
        """Where the agent listens for its bridge: ``contiv-<bridge>.sock`` in OVS's run directory.
        ovs-vswitchd refuses to connect to a ``unix:`` controller anywhere else ("possibility for
        remote exploit")."""
        if self.of_socket:
            return self.of_socket
        return os.path.join(self.ovs_rundir, f"contiv-{self.bridge}.sock")

    @property
    def userspace(self) -> bool:
        return self.datapath_type == "netdev"
