"""Where the DNS responder lives, as both the flows and the host side need it (no imports: the
pipeline stays a pure function of the state)."""

from __future__ import annotations

DNS_PORT = "contivdns"  # the OVS internal port in the agent's namespace
DNS_PORT_MAC = "00:00:11:11:11:13"  # its MAC (redirected queries are sent to it)
DNS_PREFIX = "169.254.53."  # tenant t's responder listens on DNS_PREFIX + str(t)
DNS_ROUTE_TABLE = 5353  # the routing table (and rule priority) that sends answers back out of the port


def tenant_address(vrf: int) -> str:
    """Where tenant *vrf*'s queries go (tenant ids 1-254; others get no DNS)."""
    return f"{DNS_PREFIX}{vrf}" if 0 < vrf < 255 else ""
