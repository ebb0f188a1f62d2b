"""Which model a server starts with: `--model`, the registry's active version, or the demo."""

from __future__ import annotations

import logging

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.errors import ModelDirectoryError
from topicproj.models.store.registry import ModelRegistry, Refused
from topicproj.service.settings import Settings

log = logging.getLogger(__name__)


def open_registry(settings: Settings) -> tuple[TopicModel, ModelRegistry, list[Refused]]:
    """The registry under --model-root and the version to serve from it.

    With --model as well, that model joins the registry (stored once, by its content) and
    becomes active if nothing is yet. Versions that fail to load are refused and reported; the
    server falls back to the newest one that loads.
    """
    assert settings.model_root is not None
    registry = ModelRegistry(settings.model_root)
    if settings.model is not None:
        version = registry.add(settings.model)
        if registry.active() is None:
            registry.activate(version)
    elif registry.active() is None and not registry.versions():
        # An empty root: start it with the demo model, so that the server has something.
        registry.activate(registry.add(load_model(settings)))
    model, refused = registry.load_active(settings.device)
    registry.mark_served(model.version_)  # the first fallback should this one break later
    return model, registry, refused


def load_model(settings: Settings) -> TopicModel:
    """The model to serve: --model, or the demo model (trained on first use)."""
    if settings.model is not None and settings.model_root is None:
        return TopicModel.load(settings.model, device=settings.device)
    path = settings.demo_model_dir
    if path.exists():
        try:
            model = TopicModel.load(path, device=settings.device)
            log.info("using the demo model at %s", path)
            return model
        except ModelDirectoryError as e:
            log.warning("retraining the demo model: %s", e)
    from topicproj.models.training.demo import (
        train_demo_model,  # training, only when there is no demo
    )

    log.info("training the demo model on the synthetic movie catalog (seconds)")
    train_demo_model(path, device=settings.device)
    return TopicModel.load(path, device=settings.device)
