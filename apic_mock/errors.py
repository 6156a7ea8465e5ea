"""APIC error replies.

APIC reports every failure in the same envelope, ``imdata[0].error.attributes.{code,text}``, with an
HTTP status that clients branch on (401 bad credentials, 403 token problems, 400 everything the
request got wrong). Raising :class:`ApicError` anywhere in the mock yields exactly that reply.
"""

from __future__ import annotations

from typing import Any


class ApicError(Exception):
    """A failure that is reported to the client as an APIC error envelope."""

    def __init__(self, code: int | str, text: str, http_status: int = 400) -> None:
        super().__init__(text)
        self.code = str(code)
        self.text = text
        self.http_status = http_status

    def envelope(self) -> dict[str, Any]:
        """The JSON body APIC sends for this error."""
        return error_envelope(self.code, self.text)


def error_envelope(code: int | str, text: str) -> dict[str, Any]:
    """Build ``{"totalCount":"1","imdata":[{"error":...}]}`` as APIC writes it."""
    return {"totalCount": "1", "imdata": [{"error": {"attributes": {"code": str(code), "text": text}}}]}


def envelope(imdata: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    """The success envelope; ``totalCount`` is a string and comes first, as in APIC."""
    return {"totalCount": str(len(imdata) if total is None else total), "imdata": imdata}


# Texts copied from live APIC replies (see shared/reference/apic.md); clients string-match some of them.
TOKEN_TIMEOUT = "Token was invalid (Error: Token timeout)"
NEED_COOKIE = (
    "Need a valid webtoken cookie (named APIC-Cookie) or a signed request with signature in the "
    "cookie APIC-Request-Signature for all REST API requests"
)
BAD_CREDENTIALS = "Username or password is incorrect - FAILED local authentication"


def parent_missing(dn: str) -> ApicError:
    """Error 102, sent when the parent chain of a configured object does not exist."""
    return ApicError(102, f"configured object ((Dn0)) not found Dn0={dn}, ")


def already_exists(label: str, cls: str, dn: str) -> ApicError:
    """Error 103, sent for ``status:"created"`` on an object that exists."""
    return ApicError(103, f"Cannot create {label} ({cls}); object {dn} already exists.")


def invalid_rn(rn: str) -> ApicError:
    """Error 104, a relative name that does not parse for any class allowed at that place."""
    return ApicError(104, f"Invalid RN {rn}")


def bad_enum(value: str, prop: str, cls: str, dn: str) -> ApicError:
    """Error 120, a value outside a property's enumeration."""
    return ApicError(120, f"unknown property value {value}, name {prop}, class {cls} [(Dn0)] Dn0={dn}, ")


def unknown_class(cls: str) -> ApicError:
    """Error 122, a class name APIC does not know."""
    return ApicError(122, f"unknown managed object class {cls}")


def unknown_attribute(attr: str, cls: str) -> ApicError:
    """Error 400 for an attribute name the class does not have."""
    return ApicError(400, f"unknown attribute '{attr}' in element '{cls}'")


def failed_validation(prop: str, dn: str, value: str) -> ApicError:
    """Error 801, a value that breaks a property's format (names, descriptions, CIDRs...)."""
    return ApicError(801, f"property {prop} of {dn} failed validation for value '{value}'")


def cannot_contain(rn: str, parent_dn: str) -> ApicError:
    """Sent when a child class is not allowed under the parent's class."""
    return ApicError(400, f"Invalid request. Can not contain child '{rn}' under parent '{parent_dn}'")
