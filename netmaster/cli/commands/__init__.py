"""netctl command groups, one module per Contiv command group (``tenant``, ``network``, …).

Each module exposes a click group named ``cli``; :mod:`netmaster.cli.netctl` mounts them.
"""
