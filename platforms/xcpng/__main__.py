"""`python -m platforms.xcpng cleanup`: an alias of `xcpng-golden pool cleanup`."""

import sys

from core.commands import main_of
from platforms.xcpng.cli import CLEANUP

sys.exit(main_of("python -m platforms.xcpng", __doc__ or "", [CLEANUP]))
