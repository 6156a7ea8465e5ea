"""Kubernetes objects in netmaster: NetworkPolicies, and the namespace and pod labels they select on.

One API (:mod:`netmaster.kubernetes.service`, routes in :mod:`netmaster.api.kubernetes`) that
``netctl apply -f`` and a Kubernetes adapter watching an API server would both call. netmaster only
checks and stores the objects (``contiv_api.k8s_netpol`` parses them); the agents compile them into
their policy stages.
"""
