"""`python -m publish`: see publish.cli."""

import sys

from publish.cli import main

sys.exit(main())
