"""Size of the memo caches on the per-endpoint flow builders.

The pipeline is rebuilt from the whole state on every change, but almost every flow depends on one
endpoint (or network) and a few numbers only. The builders are pure functions of hashable values, so
they are memoised (functools.lru_cache): an unchanged endpoint costs a cache hit instead of building
its flows again, and the rebuilt flow is the very same object, which also makes the diff cheap.
Bounded so that endpoints that come and go do not grow memory without limit.
"""

FLOW_CACHE_SIZE = 1 << 16
