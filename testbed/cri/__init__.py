"""Kubernetes' path to the network without Kubernetes: CRI -> containerd -> CNI. A private containerd
per simulated host (:mod:`testbed.cri.containerd`), a CRI client (:mod:`testbed.cri.client`, stubs
generated from CRI's api.proto by :mod:`testbed.cri.stubs`), and the sandbox image it needs
(:mod:`testbed.cri.image`)."""
