"""The model registry on real directories: versions, the active pointer, damage and fallback."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from topicproj.models.core.artifacts import MANIFEST, WEIGHTS, model_version
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.errors import ModelDirectoryError, NonFiniteError, UnknownVersion
from topicproj.models.store.lease import Lease, LeaseLost
from topicproj.models.store.registry import ModelRegistry

from ..factories import small_synthetic


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


def poisoned_copy(model: TopicModel, directory) -> str:
    """`model` saved with one weight set to NaN and a manifest that matches: what a training
    run of inf produced before its options were checked. Returns the directory's version."""
    model.save(directory)
    tensors = load_file(directory / WEIGHTS)
    name = next(k for k, t in tensors.items() if t.is_floating_point() and t.numel())
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, directory / WEIGHTS)
    manifest = json.loads((directory / MANIFEST).read_text())
    data = (directory / WEIGHTS).read_bytes()
    manifest["files"][WEIGHTS] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return model_version(directory)


def test_a_version_of_nan_is_neither_added_nor_loaded(tmp_path, two_models):
    a, b, _ = two_models
    source = tmp_path / "nan"
    poisoned_copy(a, source)
    registry = ModelRegistry(tmp_path / "root")
    with pytest.raises(ModelDirectoryError, match="inf or NaN"):
        registry.add(source)
    assert registry.versions() == []
    with pytest.raises(NonFiniteError):  # and a fitted model of NaN is never written
        kept = float(b.projector_.keyword_topics.data[0, 0])
        b.projector_.keyword_topics.data[0, 0] = float("inf")
        try:
            b.save(tmp_path / "inf")
        finally:
            b.projector_.keyword_topics.data[0, 0] = kept
    assert not (tmp_path / "inf").exists()


def test_the_fallback_skips_nan_and_prefers_the_version_last_served(tmp_path, two_models):
    a, b, _ = two_models
    registry = ModelRegistry(tmp_path)
    va = registry.add(a)
    registry.activate(va)
    registry.mark_served(va)  # what a server does once it serves a version
    vb = registry.add(b)
    # a NaN version stored before the registry checked (the newest of all), active, damaged
    vn = poisoned_copy(b, registry.root / "versions" / "tmp")
    (registry.root / "versions" / "tmp").rename(registry.root / "versions" / vn)
    os.utime(registry.path(vn) / MANIFEST, (2e9, 2e9))
    (registry.root / "active").write_text(vn + "\n")
    model, refused = registry.load_active(device="cpu")
    assert model.version_ == va  # not vb, the newest that loads: va was active and served
    assert [r.version for r in refused] == [vn] and "inf or NaN" in refused[0].reason
    assert vb in {v.version for v in registry.versions()}
    # with no record of a served version, the newest finite one
    (registry.root / "served").unlink()
    model, _ = registry.load_active(device="cpu")
    assert model.version_ == vb


def test_a_version_is_added_only_under_the_current_lease(tmp_path, two_models):
    a, b, _ = two_models
    registry = ModelRegistry(tmp_path)
    old = Lease.take(tmp_path)  # the server that started a job
    assert registry.add(a, lease=old) in {v.version for v in registry.versions()}
    Lease.take(tmp_path)  # a new server took over (the old one was killed)
    with pytest.raises(LeaseLost):
        registry.add(b, lease=old)
    assert len(registry.versions()) == 1
    assert not [p for p in (tmp_path / "versions").iterdir() if p.name.startswith(".")]
