"""Exit codes and the exceptions that carry them out of a netctl command.

Scripts written for Contiv's netctl test ``$?``, so the numbers are Contiv's (``netctl/exit.go``):
1 for a usage problem (and, as in Contiv, for "cannot reach netmaster"), 3 for any error answer from
netmaster. Commands raise these exceptions instead of calling ``sys.exit`` so that one place
(:class:`netmaster.cli.framework.NetctlGroup`) decides how every failure is shown.
"""

from __future__ import annotations

import sys
from typing import IO

import click

EXIT_OK = 0
EXIT_HELP = 1
"""Wrong arguments or flags: the sub-command's help is shown (Contiv ``exitHelp``)."""
EXIT_REQUEST = 2
"""Reserved by Contiv for request-building failures; kept for completeness of the table."""
EXIT_INVALID = 3
"""netmaster answered with an error (any non-2xx status)."""
EXIT_IO = 4
"""Local I/O failure (Contiv ``exitIO``)."""


class NetctlError(click.ClickException):
    """A failure reported as ``ERROR: <message>`` on stderr with a fixed exit code.

    Subclassing :class:`click.ClickException` lets click's own machinery (and ``CliRunner``) see
    the exit code, so tests observe exactly what a shell would.
    """

    exit_code = EXIT_INVALID

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"ERROR: {self.format_message()}", file=file or sys.stderr)


class RestError(NetctlError):
    """netmaster refused or failed a request; carries the HTTP status for callers that branch on it."""

    exit_code = EXIT_INVALID

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ConnectionFailed(NetctlError):
    """netmaster could not be reached at all; Contiv exits 1 here ("Error connecting to netmaster")."""

    exit_code = EXIT_HELP

    def __init__(self, url: str, reason: str, peer: str = "netmaster") -> None:
        super().__init__(f"Error connecting to {peer} at {url}: {reason}")
        self.url = url


class BadUsage(click.UsageError):
    """Arguments that parse but make no sense together (e.g. a rule direction with the wrong peers).

    Raised as a usage error so it gets the same treatment as a wrong argument count: exit 1.
    ``show_help`` follows Contiv, which prints the sub-command help for some of these and not others.
    """

    def __init__(self, message: str, ctx: click.Context | None = None, *, show_help: bool = True) -> None:
        super().__init__(message, ctx)
        self.show_help = show_help
