"""Certificate (signature-based) authentication: every request carries an RSA-SHA256 signature of
method + path-and-query + body in the ``APIC-Request-Signature`` cookie (apic.md §1.4).

The signed string must be byte-identical to what goes on the wire, so callers pass the exact raw path
and body they send.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key


class RequestSigner:
    def __init__(self, cert_dn: str, private_key_pem: bytes) -> None:
        key = load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("APIC signatures need an RSA private key")
        self._key = key
        self.cert_dn = cert_dn

    def signature(self, method: str, path_and_query: str, body: bytes) -> str:
        payload = method.upper().encode() + path_and_query.encode() + body
        raw = self._key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode()

    def cookie(self, method: str, path_and_query: str, body: bytes) -> str:
        """The ``Cookie`` header value for one request."""
        return "; ".join((
            f"APIC-Request-Signature={self.signature(method, path_and_query, body)}",
            "APIC-Certificate-Algorithm=v1.0",
            "APIC-Certificate-Fingerprint=fingerprint",
            f"APIC-Certificate-DN={self.cert_dn}",
        ))
