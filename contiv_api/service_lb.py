"""A serviceLB's providers and ports: one rule for netmaster (which validates the object and lists the
providers in its inspect) and the agent (which programs them from the watch stream), so the two cannot
disagree about who provides a service.

- ``selectors``: ``key=value`` labels; an endpoint provides the service when it is in the service's
  tenant and its labels hold every selector (Contiv's rule). Labels come with the endpoint (CNI args or
  runtime annotations, the endpoint API).
- ``ports``: ``svcPort:provPort:protocol``, protocol ``tcp`` or ``udp`` in any case (Contiv wrote
  ``TCP``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

RESERVED_LABELS = "io.contiv."
MAX_LABELS = 256
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./\-]{0,255}")
_PORT = re.compile(r"^([0-9]{1,5}):([0-9]{1,5}):(tcp|udp)$", re.IGNORECASE)


def label_problem(key: Any, value: Any) -> str | None:
    """Why ``key=value`` cannot be a user label of an endpoint, or None (netmaster's labels route and
    the agent's Docker container labels apply the same rule)."""
    if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key) or key.startswith(RESERVED_LABELS):
        return (f"label key {key!r} must be a name (letters, digits, '_./-', up to 256 characters), not under "
                f"{RESERVED_LABELS}")
    if not isinstance(value, str) or len(value) > 256:
        return f"the value of label {key!r} must be a string of up to 256 characters"
    return None


def parse_selectors(selectors: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{k: v}``. Raises ValueError naming a malformed selector."""
    out = {}
    for sel in selectors:
        if sel.count("=") != 1 or sel.startswith("=") or sel.endswith("="):
            raise ValueError(f"invalid selector {sel!r}: expected key=value")
        key, value = sel.split("=")
        out[key] = value
    return out


def parse_port(port: str) -> tuple[int, int, str]:
    """``"80:8080:TCP"`` -> ``(80, 8080, "tcp")``. Raises ValueError for anything else."""
    found = _PORT.match(port)
    if not found or not (0 < int(found[1]) < 65536 and 0 < int(found[2]) < 65536):
        raise ValueError(f"invalid port {port!r}: expected svcPort:provPort:tcp|udp")
    return int(found[1]), int(found[2]), found[3].lower()


def provides(service: Mapping[str, Any], endpoint: Mapping[str, Any]) -> bool:
    """Whether *endpoint* (a record as netmaster stores it) provides *service* (a serviceLB config)."""
    selectors = parse_selectors(service.get("selectors") or ())
    labels = endpoint.get("labels") or {}
    return (bool(selectors) and endpoint.get("tenantName", "default") == service.get("tenantName")
            and all(labels.get(k) == v for k, v in selectors.items()))
