"""`python -m bench.matching`: see bench/matching/harness.py."""

import sys

from bench.matching.harness import main

sys.exit(main())
