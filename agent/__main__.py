"""``python -m agent`` runs the netplugin daemon."""

import sys

from agent.daemon import main

sys.exit(main())
