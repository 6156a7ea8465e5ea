"""netmaster: the Contiv-compatible API server, allocator and source of truth."""

from contiv_api import __version__

__all__ = ["__version__"]
