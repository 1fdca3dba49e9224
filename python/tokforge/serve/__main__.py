"""``python -m tokforge.serve``: the playground without the main command line."""

import sys

from .command import main

sys.exit(main())
