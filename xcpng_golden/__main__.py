"""`python -m xcpng_golden`: the same as the `xcpng-golden` console script."""

import sys

from xcpng_golden.main import main

sys.exit(main())
