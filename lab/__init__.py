"""The lab: evaluation, scoring, the research activation forms and the activation study.

A top-level folder of the repository, beside benchmarks/, and not installed with the package:
it depends on `topicproj.models` (core, data, training), and nothing installed imports it (a
test says so). `topicproj evaluate` and `topicproj study` load it from a checkout
(service/cli/lab.py); `python -m lab.equal_sparsity` and the other experiments run from the
checkout's root.
"""

# Registers the research forms with the core, so that every use of the lab can build them.
from . import candidates  # noqa: F401
