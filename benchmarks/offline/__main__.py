"""`python -m benchmarks.offline`, as RESULTS.md's older entries ran it."""

import sys

from benchmarks.offline.cli import main

sys.exit(main())
