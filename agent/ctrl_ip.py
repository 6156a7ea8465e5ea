"""``--ctrl-ip``: the agent's control address (Contiv's flag).

The agent talks to netmaster from this address and reports it in its agent record, so a host with
several networks uses its control network for control traffic whatever the routing table prefers. A
typo must not start an agent whose connections fail later with EADDRNOTAVAIL, so the address is
checked against the host's addresses at start-up.
"""

from __future__ import annotations

import ipaddress
import socket

from pyroute2 import IPRoute


def host_addresses() -> set[str]:
    """IPv4 addresses of this network namespace's interfaces."""
    with IPRoute() as ipr:
        return {str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(family=socket.AF_INET)}


def check_ctrl_ip(value: str) -> str:
    """*value* if it is an IPv4 address of this host; ValueError with the reason otherwise."""
    try:
        address = str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"--ctrl-ip {value!r} is not an IPv4 address") from None
    local = host_addresses()
    if address not in local:
        raise ValueError(f"--ctrl-ip {address} is not an address of this host (it has {', '.join(sorted(local))})")
    return address
