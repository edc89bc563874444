"""Entry point for `python -m lm_core`."""

import sys

from .cli import main

sys.exit(main())
