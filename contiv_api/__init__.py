"""What crosses a process boundary between the project's daemons, in one home.

* :mod:`contiv_api.netmaster_client`: the asynchronous netmaster client of agents and other daemons
  (snapshot + watch, endpoint calls, retries across several netmasters);
* :mod:`contiv_api.informer`: a cache kept by list+watch on top of it;
* :mod:`contiv_api.watch_format`: the snapshot and watch-line format, both ends;
* :mod:`contiv_api.aci_gw_payload`: Contiv's aci-gw v1.2 payload schema (netmaster writes it, aci-gw
  parses it);
* :mod:`contiv_api.mac`: the container MAC rule;
* :mod:`contiv_api.backoff`: the retry backoff every reconnect loop uses.

It also holds the project's version. It depends on no other package of the project; ``netmaster``,
``agent`` and ``aci_gw`` depend on it rather than on each other's internals.
"""

__version__ = "0.1.0"  # one project, one version: every daemon reports this one
