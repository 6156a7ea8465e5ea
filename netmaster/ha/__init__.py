"""High availability: leader election, leases, the member registry, one netmaster's place in the cluster,
and what only the leader runs (endpoint garbage collection)."""
