"""The model registry on real directories: versions, the active pointer, damage and fallback."""

from __future__ import annotations

import os

import numpy as np
import pytest

from topicproj.models.core.artifacts import WEIGHTS
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.errors import ModelDirectoryError, UnknownVersion
from topicproj.models.store.registry import ModelRegistry

from .factories import small_synthetic


@pytest.fixture(scope="module")
def two_models():
    items = small_synthetic().catalog.keywords
    a = TopicModel(4, min_df=2, max_epochs=3, device="cpu", random_state=0).fit(items)
    b = TopicModel(5, min_df=2, max_epochs=3, device="cpu", random_state=1).fit(items)
    return a, b, items


def test_add_activate_and_load(tmp_path, two_models):
    a, b, items = two_models
    registry = ModelRegistry(tmp_path / "root")
    assert registry.versions() == [] and registry.active() is None
    va = registry.add(a)
    vb = registry.add(b.save(tmp_path / "b-dir"))  # from a model directory
    assert va != vb and registry.add(a) == va  # the same content is stored once
    assert [v.version for v in registry.versions()] == [va, vb]
    registry.activate(vb)
    assert registry.active() == vb
    assert [v.active for v in registry.versions()] == [False, True]
    model, refused = registry.load_active(device="cpu")
    assert refused == [] and model.version_ == vb and model.n_topics == 5
    np.testing.assert_array_equal(model.transform(items[:20]), b.transform(items[:20]))
    assert not [p for p in (tmp_path / "root").rglob("*") if p.name.startswith(".")]


def test_names_that_are_not_versions_are_refused(tmp_path, two_models):
    registry = ModelRegistry(tmp_path)
    registry.add(two_models[0])
    for name in ("../../etc", "/etc/passwd", "versions", "0123456789ab", ".."):
        with pytest.raises(UnknownVersion):
            registry.activate(name)


def test_a_damaged_active_version_falls_back_to_the_newest_good_one(tmp_path, two_models):
    a, b, _ = two_models
    registry = ModelRegistry(tmp_path)
    va, vb = registry.add(a), registry.add(b)
    registry.activate(vb)
    weights = registry.path(vb) / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-8] + b"damaged!")
    with pytest.raises(ModelDirectoryError, match="checksum"):
        registry.activate(vb)  # verified before the pointer moves
    model, refused = registry.load_active(device="cpu")
    assert model.version_ == va
    assert [r.version for r in refused] == [vb] and "checksum" in refused[0].reason
    assert registry.active() == vb  # the operator decides; the pointer is not rewritten


def test_nothing_loads_is_a_clear_error(tmp_path, two_models):
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ModelDirectoryError, match="holds no model version"):
        registry.load_active()
    v = registry.add(two_models[0])
    os.remove(registry.path(v) / WEIGHTS)
    with pytest.raises(ModelDirectoryError, match=f"no model version loads: {v}"):
        registry.load_active()


def test_adding_a_damaged_directory_stores_nothing(tmp_path, two_models):
    source = two_models[0].save(tmp_path / "src")
    (source / WEIGHTS).write_bytes(b"not weights")
    registry = ModelRegistry(tmp_path / "root")
    with pytest.raises(ModelDirectoryError):
        registry.add(source)
    assert registry.versions() == []
    assert list((tmp_path / "root" / "versions").iterdir()) == []
