"""The main-job walkthrough run by ``scripts/demo``: the whole ACI workflow on one machine, narrated.

It lives outside the product packages because it stands on the simulated cluster of ``tests/cluster``
(hosts and containers as network namespaces, agents, a simulated leaf): the product has no notion of
fake hosts, and the demo must show the same stack the end-to-end tests prove. ``demo.aci`` is the
walkthrough, ``demo.keep`` what ``--keep`` leaves behind and how ``down`` removes it; the netctl-only
walkthrough on SQLite stays in ``demo.basic`` (``scripts/demo --basic``).
"""
