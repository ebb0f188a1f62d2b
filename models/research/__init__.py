"""The lab: evaluation, scoring, candidate activation forms and the activation study.

Serving imports nothing from here (a test says so); the command line imports it on demand.
"""

# Registers the candidate forms with the core, so that every use of the lab can build them.
from . import candidates  # noqa: F401
