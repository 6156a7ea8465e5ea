"""The one interface the gateway uses to talk to an APIC, whatever the backend.

It mirrors the few cobra ``MoDirectory`` operations the gateway needs (apic.md §6.4) in terms of the
neutral :class:`~aci_gw.mo.Mo` tree, so the REST and cobra backends are interchangeable and the rest of
the gateway never sees a wire format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from aci_gw.mo import Mo


class ApicClient(ABC):
    backend: str = "?"

    @abstractmethod
    def login(self) -> None:
        """Authenticate now (a no-op for certificate sessions, which sign every request)."""

    @abstractmethod
    def read(
        self, dn: str, subtree: str = "full", classes: tuple[str, ...] = (), config_only: bool = False
    ) -> Mo | None:
        """The object at ``dn`` with its subtree (``full``, ``children`` or ``no``), None if absent.
        ``classes`` limits the nested objects to those classes; ``config_only`` leaves out operational
        attributes (a reconcile needs only what can be configured, and the reply is much smaller)."""

    @abstractmethod
    def children(self, dn: str, classes: tuple[str, ...] = ()) -> list[Mo]:
        """Direct children of ``dn`` (optionally of the given classes), each carrying its ``dn``."""

    @abstractmethod
    def class_query(
        self, cls: str, prop_filter: str | None = None, subtree: str = "no", classes: tuple[str, ...] = ()
    ) -> list[Mo]:
        """Every object of ``cls`` in the fabric, optionally filtered and with subtrees."""

    @abstractmethod
    def commit(self, dn: str, tree: Mo) -> None:
        """POST ``tree`` (rooted at the object ``dn``) in one request. Idempotent by construction:
        the gateway never sends ``status=created``, so a repeat after a lost reply is harmless."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """Check the APIC answers an authenticated query now; raise ApicError when it does not."""

    def read_tenants(self, names: list[str]) -> dict[str, Mo | None]:
        """Several tenant subtrees (configuration only) by name; backends may do it in one query."""
        return {name: self.read(f"uni/tn-{name}", config_only=True) for name in names}

    def audit(self, dns: list[str]) -> list[Mo]:
        """The APIC's audit records (``aaaModLR``) of changes to these DNs, newest first; empty when
        the backend cannot ask."""
        return []

    def exists(self, dn: str) -> bool:
        return self.read(dn, subtree="no") is not None

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
