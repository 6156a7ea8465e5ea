"""``python -m netmaster.kubernetes.adapter``: the ``contiv-k8s-adapter`` command."""

import sys

from netmaster.kubernetes.adapter.cli import main

sys.exit(main())
