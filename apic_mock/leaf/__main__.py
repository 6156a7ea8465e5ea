"""``python -m apic_mock.leaf``: the simulated leaf's command line (see :mod:`apic_mock.leaf.cli`)."""

from apic_mock.leaf.cli import main

raise SystemExit(main())
