"""One writer at a time: the fencing token a push carries, recorded in the APIC next to the intent.

netmaster's ACI reconciler runs on the leader only, but during a failover the old leader may still
have a push in flight while the new one starts pushing, possibly through another gateway process. The
gateway's per-tenant lock is per process, so it cannot order those writes. Instead every push carries
a token that only grows from one leader to the next (netmaster uses the store revision at which its
reconciler started), and the gateway records the highest token it wrote on the tenant, as a
``tagAnnotation`` (``annotationKey-[contiv-aci-gw-fencing]``) inside the same one-POST change:

* a push whose token is lower than the recorded one is refused before anything is written;
* the APIC offers no compare-and-swap, so two pushes can still both pass the check when their
  read-diff-write windows overlap; the writer with the newer token then sees its intent (and the
  token) changed by the stale POST through its drift watch and writes it back, while the stale
  writer's own repair is refused by the token check and it drops its intent. The APIC ends with the
  newer intent either way.

A push without a token (Contiv's own netmaster) is accepted and leaves the recorded token as it is.
"""

from __future__ import annotations

from aci_gw.mo import Mo

FENCING_KEY = "contiv-aci-gw-fencing"
FENCING_RN = f"annotationKey-[{FENCING_KEY}]"
HEADER = "X-Contiv-Fencing-Token"


class StaleToken(Exception):
    """A push carried a token older than the one recorded in the APIC."""

    def __init__(self, dn: str, token: int, recorded: int) -> None:
        super().__init__(
            f"fencing token {token} is older than {recorded} recorded on {dn}: a newer netmaster leader "
            "owns this tenant's intent; push refused, nothing was written"
        )
        self.token = token
        self.recorded = recorded


def parse_token(raw: str | None) -> int | None:
    """The header value as a non-negative integer; None when absent; ValueError when malformed."""
    if raw is None or not raw.strip():
        return None
    value = int(raw.strip())
    if value < 0:
        raise ValueError("negative")
    return value


def recorded_token(tenant: Mo | None) -> int | None:
    """The token recorded on the tenant as the APIC holds it (None: never fenced)."""
    if tenant is None:
        return None
    mark = tenant.child(FENCING_RN)
    try:
        return int(mark.attrs.get("value", "")) if mark is not None else None
    except ValueError:
        return None


def check(dn: str, tenant: Mo | None, token: int | None) -> int | None:
    """The token the push will record (its own, or the one already there for a tokenless push);
    raises StaleToken when ``token`` goes backwards."""
    recorded = recorded_token(tenant)
    if token is None:
        return recorded
    if recorded is not None and token < recorded:
        raise StaleToken(dn, token, recorded)
    return token


def mark(desired: Mo, token: int | None) -> None:
    """Add the token record to the desired tenant tree (so the diff writes it in the same POST)."""
    if token is not None:
        desired.add(Mo("tagAnnotation", {"key": FENCING_KEY, "value": str(token)}))
