"""Errors raised by every APIC backend, so callers never depend on a transport library."""

from __future__ import annotations


class ApicError(Exception):
    """The APIC refused a request: ``code`` is APIC's error code, ``status`` the HTTP status."""

    def __init__(self, message: str, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ApicAuthError(ApicError):
    """Login failed or the credentials were refused; retrying will not help."""


class ApicUnavailable(ApicError):
    """The APIC could not be reached or kept answering 5xx after every retry."""
