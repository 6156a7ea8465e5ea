"""Field rules of Contiv's object model, and the messages Contiv's generated validators gave.

Contiv generated its Go model from JSON specs: each field had a type, an optional regex, a maximum
length and a numeric range, and validation failures read ``<field> string too long``,
``<field> string invalid format`` or ``<field> Value Out of bound``. We keep those rules and words, so
scripts that match on them keep working, but report them as 400 instead of Contiv's blanket 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from netmaster.errors import InvalidError

# DNS-label style names, dots allowed, start and end alphanumeric (Contiv's name regex).
_LABEL = r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])"
NAME_RE = rf"^({_LABEL}\.)*{_LABEL}$"
NAME_OR_EMPTY_RE = rf"^(({_LABEL}\.)*{_LABEL})?$"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
IPV4_RE = rf"^({IPV4})$"
IPV4_OR_EMPTY_RE = rf"^({IPV4})?$"
# a.b.c.d[-e.f.g.h]/len, len 1..31 as in Contiv's regex (IPAM narrows it to 8..31 later).
SUBNET_RE = rf"^{IPV4}(-{IPV4})?/([1-9]|[12][0-9]|3[01])$"
IP_POOL_RE = rf"^({IPV4}(-{IPV4})?)?$"
# Rule addresses: an IPv4, optionally "-N" (last-octet range end), optionally "/len".
RULE_IP_RE = rf"^({IPV4}(-{_OCTET})?(/([0-9]|[12][0-9]|3[0-2]))?)?$"
IPV6_SUBNET_RE = r"^([0-9a-fA-F:]+:[0-9a-fA-F:.]*/(1[0-2][0-9]|[1-9][0-9]?))?$"
IPV6_OR_EMPTY_RE = r"^([0-9a-fA-F:]+:[0-9a-fA-F:.]*)?$"
PVT_SUBNET_RE = rf"^{IPV4}/16$"
BANDWIDTH_RE = r"^([1-9][0-9]* ?[kKmMgG](bps|b)?)?$"
PATH_BINDINGS_RE = r"^(topology/pod-[0-9]+/paths-[0-9]+/pathep-\[[A-Za-z0-9/.:-]+\](,|$))*$"
NODE_BINDINGS_RE = r"^(topology/pod-[0-9]+/node-[0-9]+(,|$))*$"


@dataclass(frozen=True, slots=True)
class Field:
    """One config field: its JSON name, type, and Contiv's validation rule."""

    name: str
    kind: type = str  # str, int or list (of str)
    regex: str | None = None
    max_len: int | None = None
    min: int | None = None
    max: int | None = None
    default: Any = None
    required: bool = False
    description: str = ""

    def default_value(self) -> Any:
        if self.default is not None:
            return self.default
        return {str: "", int: 0, list: []}[self.kind]

    def check(self, value: Any) -> Any:
        """Check ``value`` (already of the right JSON type) and return it normalised."""
        if self.kind is str:
            if self.max_len is not None and len(value) > self.max_len:
                raise InvalidError(f"{self.name} string too long")
            if self.required and value == "":
                raise InvalidError(f"{self.name} is required")
            if self.regex and not _compiled(self.regex).fullmatch(value):
                raise InvalidError(f"{self.name} string invalid format")
        elif self.kind is int:
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise InvalidError(f"{self.name} Value Out of bound")
        elif self.kind is list:
            for item in value:
                if self.max_len is not None and len(item) > self.max_len:
                    raise InvalidError(f"{self.name} string too long")
                if self.regex and not _compiled(self.regex).fullmatch(item):
                    raise InvalidError(f"{self.name} string invalid format")
        return value

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any]
        if self.kind is str:
            schema = {"type": "string"}
            if self.max_len is not None:
                schema["maxLength"] = self.max_len
        elif self.kind is int:
            schema = {"type": "integer"}
            if self.min is not None:
                schema["minimum"] = self.min
            if self.max is not None:
                schema["maximum"] = self.max
        else:
            schema = {"type": "array", "items": {"type": "string"}}
        if self.default is not None:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        return schema


_regex_cache: dict[str, re.Pattern[str]] = {}


def _compiled(regex: str) -> re.Pattern[str]:
    pattern = _regex_cache.get(regex)
    if pattern is None:
        pattern = _regex_cache[regex] = re.compile(regex)
    return pattern


def name(field: str, max_len: int = 64, **kw: Any) -> Field:
    return Field(field, str, NAME_RE, max_len, required=True, **kw)


def optional_name(field: str, max_len: int = 64, **kw: Any) -> Field:
    return Field(field, str, NAME_OR_EMPTY_RE, max_len, **kw)
