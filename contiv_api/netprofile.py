"""How a netprofile's fields become the datapath's QoS: one definition for the agent (which applies
it) and netmaster (whose inspect shows what is in force), so the two cannot disagree.

- ``bandwidth`` (netmaster's regex: ``10 kbps``, ``100mbps``, ``5Mb``, ``1g``; decimal units) -> a
  rate in kbit/s, enforced by an OpenFlow meter on each endpoint port of the groups using the profile;
- ``burst`` in kilobytes (Contiv's unit) -> the meter's burst in kbits; 0 -> 200 ms of the rate (at
  least 100 kbits): a burst far below one TCP window makes TCP back off well under the rate;
- ``DSCP`` 1-63 -> set on every IPv4 packet the group's endpoints send; 0 (Contiv's default) leaves the
  sender's value: the API cannot tell "mark 0" from "not set".
"""

from __future__ import annotations

import re
from typing import Any

_BANDWIDTH = re.compile(r"^([1-9][0-9]*) ?([kKmMgG])(bps|b)?$")
_KBPS_PER_UNIT = {"k": 1, "m": 1000, "g": 1000_000}


def bandwidth_kbps(text: str) -> int:
    """A netprofile bandwidth in kbit/s; 0 for none. Raises ValueError for text netmaster would refuse."""
    if not text:
        return 0
    found = _BANDWIDTH.match(text.strip())
    if not found:
        raise ValueError(f"bandwidth {text!r} not understood")
    return int(found.group(1)) * _KBPS_PER_UNIT[found.group(2).lower()]


def burst_kbits(burst_kbytes: int, rate_kbps: int) -> int:
    """The meter's burst: the profile's (kilobytes -> kbits) or, when 0, 200 ms of the rate."""
    return burst_kbytes * 8 if burst_kbytes else max(rate_kbps // 5, 100)


def in_force(config: dict[str, Any]) -> dict[str, Any]:
    """What the datapath applies for a netprofile's *config* (netmaster's inspect shows it)."""
    rate = bandwidth_kbps(config.get("bandwidth") or "")
    dscp = int(config.get("DSCP") or 0)
    return {
        "rateKbps": rate,
        "burstKbits": burst_kbits(int(config.get("burst") or 0), rate) if rate else 0,
        "rateLimit": "OpenFlow meter per endpoint port (drop band)" if rate else "none",
        "dscpMarking": dscp or "none (the sender's value)",
    }
