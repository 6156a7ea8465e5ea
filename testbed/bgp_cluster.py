"""A SyncCluster in L3 mode: routing fwdMode, one or two FRR ToRs on the uplink segment, a Bgp object
per host (router IP ``UPLINK_NET.i/24``, AS ``65000 + i``: a distinct AS per host, so eBGP's loop
check lets one host's routes reach the others through the ToR), and the agents publishing their
inspect API to netmaster (``netctl bgp inspect``). With two ToRs, an external network behind both
(``testbed.tor.SharedExternal``: ECMP to the outside)."""

from __future__ import annotations

from shutil import which

from testbed.cluster import SimHost
from testbed.sync_cluster import Netmaster, SyncCluster
from testbed.tor import TOR_AS, SharedExternal, Tor, host_router_ip

HOST_AS_BASE = 65000
NEEDED = ("gobgpd", "vtysh", "/usr/lib/frr/bgpd", "/usr/lib/frr/zebra")


def missing_bgp_prerequisites() -> str | None:
    absent = [b for b in NEEDED if which(b) is None]
    return f"missing BGP binaries: {', '.join(absent)} (scripts/setup installs gobgpd and frr)" if absent else None


class BgpCluster(SyncCluster):
    def __init__(self, n_hosts: int = 2, n_tors: int = 1) -> None:
        super().__init__(n_hosts=n_hosts, agent_args=("--inspect-listen", "0.0.0.0:0"))
        self.n_tors = n_tors
        self.tors: list[Tor] = []
        self.shared: SharedExternal | None = None  # with two ToRs: a network behind both (ECMP)

    def up(self, start_agents: bool = True) -> BgpCluster:
        super().up(start_agents=False)
        for i in range(self.n_tors):
            self.tors.append(Tor(self.prefix, self.root, f"{self.prefix}tr", index=i).up())
        if self.n_tors > 1:
            self.shared = SharedExternal(self.prefix, self.tors).up()
        if start_agents:
            for host in self.hosts:
                self.start_agent(host)
        return self

    @property
    def nm(self) -> Netmaster:
        assert self.netmaster is not None
        return Netmaster(self.netmaster.url)

    def routing_mode(self) -> int:
        """Set the global fwdMode to routing (before any network exists)."""
        nm = self.nm
        current = {k: v for k, v in nm.ok(nm.http.get("/api/v1/globals/global/")).items() if k != "key"}
        return nm.post("globals", "global", **{**current, "fwdMode": "routing"})

    def bgp_config(self, host: SimHost) -> dict[str, str]:
        i = self.hosts.index(host) + 1
        return {"hostname": host.name, "routerip": host_router_ip(i), "as": str(HOST_AS_BASE + i),
                "neighbor-as": str(TOR_AS), "neighbor": ",".join(t.ip for t in self.tors)}

    def peer(self, host: SimHost, **override: str) -> int:
        """Create (or replace) *host*'s Bgp object."""
        return self.nm.post("Bgps", host.name, **{**self.bgp_config(host), **override})

    def unpeer(self, host: SimHost) -> int:
        return self.nm.delete("Bgps", host.name)
