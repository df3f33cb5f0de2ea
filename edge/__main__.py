"""`python -m edge`: see edge.cli."""

import sys

from edge.cli import main

sys.exit(main())
