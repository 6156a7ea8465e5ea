"""netmaster: the Contiv-compatible API server, allocator and source of truth."""

__version__ = "0.1.0"
