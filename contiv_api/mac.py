"""The container MAC rule, shared by netmaster (which assigns it) and the agent (which fills it in for
records that carry none): one rule, one home, so the two can never disagree."""

from __future__ import annotations

import ipaddress


def mac_for(ip: str) -> str:
    """Contiv's container MAC: ``02:02:`` followed by the four bytes of the IPv4 address."""
    return "02:02:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)
