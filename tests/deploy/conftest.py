"""The deploy tests run real servers too: the service tests' fixtures (the served model and its
catalog come from tests/conftest.py)."""

from tests.service.conftest import (  # noqa: F401
    roots,
    serve,
)
