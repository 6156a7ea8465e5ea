"""Kubernetes objects in netmaster: NetworkPolicies, and the namespace and pod labels they select on.

One API (:mod:`netmaster.kubernetes.service`, routes in :mod:`netmaster.api.kubernetes`) that
``netctl apply -f`` and the Kubernetes adapter watching an API server (:mod:`.adapter`, a process of
its own) both call. netmaster only
checks and stores the objects (``contiv_api.k8s_netpol`` parses them); the agents compile them into
their policy stages.
"""
