"""apic_mock: a Cisco APIC REST emulator for development, CI and demos.

The package is split by responsibility: ``classes`` (the data-driven class table), ``dn`` (bracket
aware DN parsing), ``tree`` (the management information tree), ``filters`` (the query filter grammar),
``query`` (the query engine), ``config`` (POST/DELETE semantics), ``auth`` (sessions and signatures),
``subscriptions`` (websocket events), ``faults`` and ``stats`` (admin features), ``app`` (HTTP wiring),
``cli`` (the ``apic-mock`` command) and ``leaf`` (a simulated ACI leaf). Test suites start it
through ``testbed.apic``, which is not part of the product.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
