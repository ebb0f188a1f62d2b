"""The deploy tests run real servers too: the service tests' fixtures."""

from tests.service.conftest import (  # noqa: F401
    catalog_items,
    model,
    model_dir,
    roots,
    serve,
)
