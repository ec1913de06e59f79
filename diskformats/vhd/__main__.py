"""`python -m diskformats.vhd info|verify|to-raw|from-raw`: an alias of `xcpng-golden vhd`."""

import sys

from core.commands import main_of
from diskformats.vhd.cli import COMMANDS

sys.exit(main_of("python -m diskformats.vhd", __doc__ or "", COMMANDS))
