"""Hooks through which an APIC backend reports what it does, so metrics stay out of the client."""

from __future__ import annotations

from typing import Protocol


class RequestObserver(Protocol):
    def request(self, method: str, status: str, seconds: float) -> None:
        """One HTTP exchange finished; ``status`` is the HTTP code or ``error`` for no answer."""

    def retry(self, reason: str) -> None:
        """A request is being repeated: ``connection``, ``5xx`` or ``token``."""

    def login(self, kind: str, ok: bool) -> None:
        """A login (``password``), refresh (``refresh``) attempt finished."""


class NullObserver:
    """The default: observe nothing."""

    def request(self, method: str, status: str, seconds: float) -> None:
        pass

    def retry(self, reason: str) -> None:
        pass

    def login(self, kind: str, ok: bool) -> None:
        pass
