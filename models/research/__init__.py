"""The lab: evaluation, scoring, candidate activation forms and the activation study.

Serving imports nothing from here (a test says so); the command line imports it on demand.
"""
