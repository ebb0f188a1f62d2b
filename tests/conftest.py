"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .objectstore import S3Server, start_s3_server

if TYPE_CHECKING:
    from topicproj.models.core.topic_model import TopicModel

# The catalog of the model most tests serve or project with (`model_dir`)
SYNTHETIC = {"n_items": 400, "n_topics": 5, "keywords_per_topic": 8, "n_filler_keywords": 40}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small trained model for the session, on disk: served, projected, deployed."""
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.synthetic import make_synthetic_catalog

    catalog = make_synthetic_catalog(**SYNTHETIC).catalog
    model = TopicModel(5, min_df=2, max_epochs=8, device="cpu").fit(catalog.keywords)
    return model.save(tmp_path_factory.mktemp("served") / "model")


@pytest.fixture(scope="session")
def model(model_dir: Path) -> TopicModel:
    from topicproj.models.core.topic_model import TopicModel

    return TopicModel.load(model_dir, device="cpu")


@pytest.fixture(scope="session")
def catalog_items() -> list[list[str]]:
    """Items of the model's catalog that it was not trained on (another seed)."""
    from topicproj.models.data.synthetic import make_synthetic_catalog

    return make_synthetic_catalog(**SYNTHETIC, seed=1).catalog.keywords


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server (moto) for the session; each test takes its own bucket."""
    pytest.importorskip("moto.server")
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server, with this process's AWS variables pointing at it."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server
