"""A model's version is its content: what determines its projections, and nothing else."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from topicproj.models.core.artifacts import MANIFEST, model_version
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.store.registry import ModelRegistry

from ..factories import small_synthetic


def _train(items: list[list[str]], **runtime: object) -> TopicModel:
    return TopicModel(5, min_df=2, max_epochs=3, device="cpu", **runtime).fit(items)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def items() -> list[list[str]]:
    return small_synthetic(n_items=200).catalog.keywords


def test_identical_training_gives_an_identical_version(items, tmp_path):
    # verbose, the training time and the history differ between the two runs; the maths do not.
    a = _train(items).save(tmp_path / "a")
    b = _train(items, verbose=True).save(tmp_path / "b")
    assert (a / "weights.safetensors").read_bytes() == (b / "weights.safetensors").read_bytes()
    assert (a / "model.json").read_bytes() != (b / "model.json").read_bytes()
    assert model_version(a) == model_version(b)
    assert TopicModel.load(a).version_ == TopicModel.load(b).version_
    registry = ModelRegistry(tmp_path / "registry")
    assert registry.add(a) == registry.add(b)  # stored once
    assert len(registry.versions()) == 1


def test_a_child_trained_twice_has_one_version(items, tmp_path):
    parent = TopicModel.load(_train(items).save(tmp_path / "parent"), device="cpu")
    more = small_synthetic(n_items=200, seed=1).catalog.keywords
    versions = {
        model_version(
            TopicModel(5, min_df=2, max_epochs=2, device="cpu")
            .fit(more, parent=parent)
            .save(tmp_path / name)
        )
        for name in ("c1", "c2")
    }
    assert len(versions) == 1


def test_other_weights_or_another_activation_give_another_version(items, tmp_path):
    base = model_version(_train(items).save(tmp_path / "base"))
    seeded = TopicModel(5, min_df=2, max_epochs=3, device="cpu", random_state=1).fit(items)
    relu = TopicModel(5, min_df=2, max_epochs=3, device="cpu", activation="relu").fit(items)
    assert model_version(seeded.save(tmp_path / "seeded")) != base
    assert model_version(relu.save(tmp_path / "relu")) != base


def test_a_directory_written_before_content_versions_loads_with_its_old_version(items, tmp_path):
    path = _train(items).save(tmp_path / "old")
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    del manifest["content"]  # as the earlier writer left it
    (path / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    old = hashlib.sha256((path / MANIFEST).read_bytes()).hexdigest()[:12]
    model = TopicModel.load(path, device="cpu")
    assert model.version_ == old
    assert model.transform(items[:3]).shape == (3, 5)


def test_the_version_does_not_trust_an_edited_content(items, tmp_path):
    path: Path = _train(items).save(tmp_path / "m")
    before = model_version(path)
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    manifest["content"]["projector"]["activation"] = "relu"
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert model_version(path) != before
