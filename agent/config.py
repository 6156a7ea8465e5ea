"""Agent configuration (the daemon's flags, Contiv's names where they exist)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AgentConfig:
    host_label: str
    ovsdb: str = "unix:/var/run/openvswitch/db.sock"
    bridge: str = "contivbr"
    datapath_type: str = "netdev"  # "system" with the kernel module; "netdev" is userspace
    of_listen: str = "127.0.0.1"
    of_port: int = 6653
    vtep_ip: str = ""  # VXLAN tunnel source; empty: no VXLAN on this host
    vlan_uplinks: tuple[str, ...] = field(default_factory=tuple)  # trunk interfaces for VLAN networks
    underlay_mtu: int = 1500  # VXLAN endpoints get this minus 50
    bond_name: str = "uplink-bond"  # the OVS port bonding several vlan_uplinks
    bond_lacp: str = "off"  # LACP on the bond: off, active or passive

    @property
    def userspace(self) -> bool:
        return self.datapath_type == "netdev"
