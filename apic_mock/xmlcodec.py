"""APIC's XML encoding, for clients that use it (Cobra defaults to XML, so do some aci_rest paths).

An MO is an element named after its class whose XML attributes are its properties, with children
as sub-elements; replies are wrapped in ``<imdata totalCount="N">``; an error is
``<error code=".." text=".."/>``. The same JSON-shaped dicts flow through the mock either way; this
module only converts at the edges.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from apic_mock.errors import ApicError

MAX_XML_DEPTH = 64


def encode(content: dict[str, Any]) -> bytes:
    """An envelope (``totalCount``, ``imdata`` and optional ``subscriptionId``) as XML."""
    root = ET.Element("imdata", {"totalCount": str(content.get("totalCount", "0"))})
    if "subscriptionId" in content:
        root.set("subscriptionId", str(content["subscriptionId"]))
    for item in content.get("imdata", []):
        root.append(_element(item))
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8")


def _element(item: dict[str, Any]) -> ET.Element:
    body = next(iter(item.values())) if len(item) == 1 else None
    if not isinstance(body, dict) or "attributes" not in body:  # aaaListDomains' plain objects
        return ET.Element("domain", {k: str(v) for k, v in item.items()})
    cls = next(iter(item))
    element = ET.Element(cls, {k: str(v) for k, v in body["attributes"].items()})
    for child in body.get("children", []):
        element.append(_element(child))
    return element


def decode(raw: bytes) -> Any:
    """An XML request body as the JSON-shaped MO (or list of MOs under ``<imdata>``)."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ApicError(400, f"XML parsing failed - {exc}") from None
    if root.tag == "imdata":
        return [_mo(child, 1) for child in root]
    return _mo(root, 1)


def _mo(element: ET.Element, depth: int) -> dict[str, Any]:
    if depth > MAX_XML_DEPTH:
        raise ApicError(400, f"invalid data: nesting deeper than {MAX_XML_DEPTH} levels")
    body: dict[str, Any] = {"attributes": dict(element.attrib)}
    children = [_mo(child, depth + 1) for child in element]
    if children:
        body["children"] = children
    return {element.tag: body}
