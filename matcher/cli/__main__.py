"""``python -m matcher.cli``: the same as the ``matcher`` console script."""

import sys

from matcher.cli import main

sys.exit(main())
