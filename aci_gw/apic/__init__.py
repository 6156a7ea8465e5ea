"""APIC access: one interface (:class:`ApicClient`), a REST backend and an optional cobra backend.

``APIC_SDK`` chooses: ``rest``, ``cobra`` (fails at startup when the SDK is missing), or ``auto``
(cobra when importable, else REST).
"""

from __future__ import annotations

from aci_gw.apic.client import ApicClient
from aci_gw.apic.cobra_backend import CobraClient, cobra_available
from aci_gw.apic.errors import ApicAuthError, ApicError, ApicUnavailable
from aci_gw.apic.observer import NullObserver, RequestObserver
from aci_gw.apic.rest import RestClient
from aci_gw.config import ApicConnection, ConfigError

__all__ = [
    "ApicAuthError", "ApicClient", "ApicError", "ApicUnavailable", "NullObserver", "RequestObserver",
    "make_client",
]


def make_client(conn: ApicConnection, observer: RequestObserver | None = None) -> ApicClient:
    """The backend ``conn.sdk`` asks for."""
    if conn.sdk == "cobra" and not cobra_available():
        raise ConfigError("APIC_SDK=cobra but the cobra SDK (acicobra, acimodel) is not importable")
    if conn.sdk == "cobra" or (conn.sdk == "auto" and cobra_available()):
        return CobraClient(conn, observer)
    return RestClient(conn, observer)
