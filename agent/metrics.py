"""Prometheus metrics of the agent, on a private registry (several agents may share a test process).

Names follow Antrea's where there is an equivalent, with a ``contiv_agent_`` prefix.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.flows = Gauge("contiv_agent_ovs_flow_count", "Flows installed per table", ["table"], registry=r)
        self.total_flows = Gauge("contiv_agent_ovs_total_flow_count", "Flows installed", registry=r)
        self.bundle_latency = Histogram("contiv_agent_ovs_flow_ops_latency_seconds",
                                        "Time to apply one bundle of flow-mods (send to barrier reply)",
                                        buckets=_LATENCY_BUCKETS, registry=r)
        self.flow_ops = Counter("contiv_agent_ovs_flow_ops_count", "Flow-mods sent", ["op"], registry=r)
        self.flow_errors = Counter("contiv_agent_ovs_flow_ops_error_count", "Bundles rejected", registry=r)
        self.reconcile = Histogram("contiv_agent_reconcile_duration_seconds",
                                   "Time to converge ports and flows on a new desired state",
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self.reconcile_errors = Counter("contiv_agent_reconcile_error_count", "Failed reconciles",
                                        registry=r)
        self.datapath_purges = Counter("contiv_agent_ovs_datapath_purge_count",
                                       "Times the userspace datapath's cached flows were purged after a flow "
                                       "change (docs/pipeline.md, \"Datapath flow cache\")", registry=r)
        self.datapath_purge_errors = Counter("contiv_agent_ovs_datapath_purge_error_count",
                                             "Purges of the userspace datapath's cached flows that failed "
                                             "(retried at the next reconcile)", registry=r)
        self.drift = Counter("contiv_agent_ovs_flow_drift_count",
                             "Times the switch's flows differed from the agent's and were resynced",
                             registry=r)
        self.docker_label_updates = Counter("contiv_agent_docker_label_update_count",
                                            "Docker endpoints' labels set from their containers' labels "
                                            "(result: set, or refused by netmaster)", ["result"], registry=r)
        self.docker_events_following = Gauge("contiv_agent_docker_events_following",
                                             "1 while the agent follows dockerd's event stream (--docker-socket)",
                                             registry=r)
        self.uplink_up = Gauge("contiv_agent_uplink_link_up", "Uplink (bond member) link state, 1 up",
                               ["interface"], registry=r)
        self.uplink_failovers = Counter("contiv_agent_uplink_failover_count",
                                        "Times the active member of the uplink bond changed", registry=r)
        self.garps = Counter("contiv_agent_garp_count",
                             "Gratuitous ARPs sent for local endpoints (ACI mode)", registry=r)
        self.endpoints = Gauge("contiv_agent_endpoint_count", "Endpoints programmed", ["location"],
                               registry=r)
        self.reclaimed = Counter("contiv_agent_endpoint_reclaimed_count",
                                 "Local endpoints created again in netmaster after it had lost them "
                                 "(endpoint GC during a partition)", registry=r)
        self.conflicts = Gauge("contiv_agent_endpoint_conflicts",
                               "Local endpoints whose address or id netmaster gave to another endpoint: kept "
                               "running, flagged, reported in the agent record", registry=r)
        self.retained_endpoints = Gauge("contiv_agent_retained_remote_endpoints",
                                        "Remote endpoints netmaster collected while their host was away, still "
                                        "forwarded to until their host re-claims them", registry=r)
        self.pending_releases = Gauge("contiv_agent_pending_endpoint_releases",
                                      "Endpoints deleted on this host whose release netmaster has not confirmed "
                                      "yet (retried until it does)", registry=r)
        self.host_access_networks = Gauge("contiv_agent_host_access_networks",
                                          "Networks by host-access state on this host (served, refused)",
                                          ["state"], registry=r)
        self.host_access_errors = Counter("contiv_agent_host_access_error_count",
                                          "Times the host side of host access (address, routes, NAT) failed "
                                          "to converge", registry=r)

        self.bgp_established = Gauge("contiv_agent_bgp_neighbors_established",
                                     "L3 mode: BGP neighbours in session (of contiv_agent_bgp_neighbors)", registry=r)
        self.bgp_neighbors = Gauge("contiv_agent_bgp_neighbors", "L3 mode: BGP neighbours configured", registry=r)
        self.bgp_announced = Gauge("contiv_agent_bgp_announced_routes",
                                   "L3 mode: local endpoints announced as /32", registry=r)
        self.bgp_learned = Gauge("contiv_agent_bgp_learned_routes",
                                 "L3 mode: learned routes installed as flows (next hop resolved)", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
