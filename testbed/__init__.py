"""The test bed: everything that starts or simulates parts of the system for tests, the demo and the benchmarks.

Development only: not in the wheel, and no product package (``netmaster``, ``agent``, ``aci_gw``,
``apic_mock``, ``contiv_api``) imports it. ``tests/``, ``demo/`` and ``bench/`` do.

* :mod:`testbed.ports`, :mod:`testbed.waiting`: a free TCP port; waiting for a condition with a deadline.
* :mod:`testbed.process`: the one launcher of a daemon process that serves HTTP, and its users
  :mod:`testbed.netmaster`, :mod:`testbed.aci_gw`; :mod:`testbed.apic` starts ``apic_mock``.
* :mod:`testbed.aci_stack`: APIC emulator + aci-gw + netmaster in ACI mode, wired together.
* :mod:`testbed.etcd`: real etcd servers (one shared per test session, or clusters).
* :mod:`testbed.cluster`: simulated hosts (a network namespace each, with a private Open vSwitch),
  trunks, underlay, containers; :mod:`testbed.sync_cluster` adds netmaster and agents that follow it;
  :mod:`testbed.fe_cluster` the CNI/Docker front ends; :mod:`testbed.cluster.aci` the simulated leaf.
* :mod:`testbed.wiring`: containers wired straight to a simulated ACI leaf.
* :mod:`testbed.netcheck`: traffic checks (ping, an HTTP server and client in a namespace).
"""
