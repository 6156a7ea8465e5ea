"""Structured logs: one JSON object per line, with the ``extra`` fields of each record.

Machine-readable lines make the mock's behaviour easy to assert on in CI logs. Nothing that could be
a secret (passwords, tokens, signatures, cookies) is ever passed to a log call by the mock itself;
uvicorn's own lines carry the websocket path, which holds the session token (``/socket<token>``),
and at debug level the request headers: :func:`masked` removes both before a line is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


_SOCKET_TOKEN = re.compile(r"/socket[^\s\"'?]+")
_SECRET_HEADER = re.compile(r"(?i)\b(cookie|set-cookie|authorization|apic-challenge)(\s*:\s*)[^\n]*")


def masked(text: str) -> str:
    """*text* without websocket session tokens and secret-bearing header values."""
    return _SECRET_HEADER.sub(r"\1\2<masked>", _SOCKET_TOKEN.sub("/socket<token>", text))


class JsonFormatter(logging.Formatter):
    """Render a record as ``{"ts":..,"level":..,"logger":..,"msg":..,<extra fields>}``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": masked(record.getMessage()),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = masked(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def configure(level: str = "info", stream: object = sys.stderr) -> None:
    """Send ``apic_mock`` and uvicorn logs through the JSON formatter."""
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    for name in ("apic_mock", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
