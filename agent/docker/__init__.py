"""Docker (libnetwork) remote network and IPAM driver over the agent's EndpointOps."""
