"""``contiv-k8s-adapter``: Kubernetes' NetworkPolicies, Namespaces and Pods, watched on an API
server, kept in netmaster through its Kubernetes API.

A separate process, not part of netmaster: it talks to netmaster only over REST with
``contiv_api``'s client (the same ``/api/v1/kubernetes/`` calls ``netctl apply -f`` makes), so it runs
once per cluster next to any number of netmasters, needs the Kubernetes client library only where it
runs, and its failures are not netmaster's. It holds no policy logic: netmaster checks and stores the
objects, the agents compile them. tests/test_layout.py keeps it from importing netmaster's internals.

* :mod:`.translate`: a Kubernetes object (a dict, as the API server sends it) -> what netmaster takes;
* :mod:`.reconcile`: brings netmaster's objects of one tenant to what the API server holds;
* :mod:`.informer`: list + watch per resource, resuming from a resourceVersion, re-listing after 410;
* :mod:`.source`: the API server, through the client library (lightkube), imported only when used;
* :mod:`.cli`: the command.
"""
