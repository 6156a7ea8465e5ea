"""QoS: a group's netprofile applied to what its local endpoints send.

One flow per local endpoint whose group has a netprofile, matching IPv4 from the endpoint's port:

- bandwidth: the OpenFlow meter instruction, meter id = the endpoint's ofport (unique on the host,
  stable across restarts), a kbit/s drop band at the profile's rate and burst. Meters, not OVS ingress
  policing: on the userspace (netdev) datapath OVS implements ``ingress_policing_rate`` on a
  netdev-linux port with a tc ingress filter on the kernel device, which the datapath's packet socket
  reads before tc runs (and this machine has no ``cls_basic``: OVS logs "adding cls_basic policing
  action failed"); a 10 Mbit/s policing measured 267 Mbit/s, the same meter 9.6-10.4 Mbit/s
  (docs/pipeline.md, "QoS"). The meters themselves are kept by the reconciler (``meters``);
- DSCP: ``set_field ip_dscp``, so the mark is on the packet wherever it goes (a peer host's tunnel,
  the uplink, a local endpoint).

Only IPv4 reaches this stage (ARP jumps from the ARP responder to L2 forwarding), so ARP is never
metered and resolution keeps working under a tight limit. Egress policy has passed: a denied packet
does not use the endpoint's rate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache

from agent.ovs.flow import Feature, Flow, Match, SetField
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import ETH_IP, PRIO_MISS, PRIO_NORMAL, Table, next_table
from agent.pipeline.view import DatapathView
from agent.state import Qos

_TABLE = Table.QOS


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def endpoint_flow(ofport: int, qos: Qos) -> Flow:
    """IPv4 from *ofport*: through its meter (if the profile limits bandwidth), DSCP set (if it marks)."""
    actions = (SetField("ip_dscp", qos.dscp),) if qos.dscp is not None else ()
    return Flow(_TABLE, PRIO_NORMAL, Match.of(in_port=ofport, eth_type=ETH_IP), actions, goto=next_table(_TABLE),
                feature=Feature.QOS, meter=ofport if qos.rate_kbps else 0)


def profiles(view: DatapathView) -> Iterator[tuple[int, Qos]]:
    """(ofport, profile) of each local endpoint whose group has a netprofile."""
    for ep, ofport in view.local_endpoints:
        grp = view.state.group(ep.tenant, ep.group)
        if grp is not None and grp.qos is not None:
            yield ofport, grp.qos


def meters(view: DatapathView) -> Mapping[int, tuple[int, int]]:
    """The meters the flows use: meter id -> (rate kbit/s, burst kbits)."""
    return {ofport: (qos.rate_kbps, qos.burst) for ofport, qos in profiles(view) if qos.rate_kbps}


def flows(view: DatapathView) -> Iterator[Flow]:
    for ofport, qos in profiles(view):
        if qos.rate_kbps or qos.dscp is not None:
            yield endpoint_flow(ofport, qos)
    yield Flow(_TABLE, PRIO_MISS, Match(), goto=next_table(_TABLE))
