"""`python -m provisioning COMMAND`: the field engineer's CLI (see provisioning.cli)."""

import sys

from provisioning.cli import main

sys.exit(main())
