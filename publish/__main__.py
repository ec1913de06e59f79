"""`python -m publish`: see publish.writer_cli."""

import sys

from publish.writer_cli import main

sys.exit(main())
