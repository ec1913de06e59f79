"""`python -m platforms janitor|cleanup`: an alias of `xcpng-golden janitor|cleanup`."""

import sys

from core.commands import main_of
from platforms.cli import COMMANDS

sys.exit(main_of("python -m platforms", __doc__ or "", COMMANDS))
