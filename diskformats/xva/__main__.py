"""`python -m diskformats.xva info|verify|to-raw|from-raw`: an alias of `xcpng-golden xva`."""

import sys

from core.commands import main_of
from diskformats.xva.cli import COMMANDS

sys.exit(main_of("python -m diskformats.xva", __doc__ or "", COMMANDS))
