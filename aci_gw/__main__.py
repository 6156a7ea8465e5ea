"""``python -m aci_gw``: the same as the ``aci-gw`` command."""

import sys

from aci_gw.cli import main

sys.exit(main())
