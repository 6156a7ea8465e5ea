"""``python -m netmaster`` runs the daemon."""

import sys

from netmaster.daemon import main

sys.exit(main())
