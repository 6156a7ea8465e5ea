"""The errors netmaster reports to clients, each tied to one HTTP status.

Contiv answered every failure with HTTP 500 and a text body; we keep its messages but say which
party is at fault: 400 for invalid input, 404 for a missing object, 409 for a conflict, an object
in use or an exhausted pool, 503 when the state store cannot be reached.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidError(ApiError):
    status = 400


class NotFoundError(ApiError):
    status = 404


class ConflictError(ApiError):
    """A conflict with existing state: in use, immutable, duplicate, exhausted."""

    status = 409


class PayloadTooLargeError(ApiError):
    status = 413


class UnavailableError(ApiError):
    status = 503
