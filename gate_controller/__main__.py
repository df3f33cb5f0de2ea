"""`python -m gate_controller`: see gate_controller.cli."""

import sys

from gate_controller.cli import main

sys.exit(main())
