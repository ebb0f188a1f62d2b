"""Model directories: round trip, contents, damage detection and atomic writes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import topicproj.models.core.artifacts as artifacts_module
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.synthetic import make_synthetic_catalog
from topicproj.models.errors import ModelDirectoryError

EXPECTED_FILES = {"weights.safetensors", "vocabulary.json", "model.json", "manifest.json"}


@pytest.fixture(scope="module")
def items() -> list[list[str]]:
    synthetic = make_synthetic_catalog(
        n_items=200, n_topics=4, keywords_per_topic=6, n_filler_keywords=20
    )
    return synthetic.catalog.keywords


@pytest.fixture(scope="module")
def model(items) -> TopicModel:
    return TopicModel(4, min_df=1, max_epochs=3, device="cpu").fit(items)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory) -> Path:
    """A model directory written once; tests that damage it work on a copy."""
    return model.save(tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "model"))


def leftovers(parent: Path, name: str = "model") -> list[str]:
    """Entries in `parent` other than the final directory: temporary or moved-aside dirs."""
    return sorted(p.name for p in parent.iterdir() if p.name != name)


# -- round trip --------------------------------------------------------------------------------


def test_save_then_load_gives_the_same_projections(model, items, tmp_path):
    path = model.save(tmp_path / "model")
    assert path == tmp_path / "model"
    loaded = TopicModel.load(path, device="cpu")
    np.testing.assert_array_equal(loaded.transform(items), model.transform(items))
    assert loaded.vocabulary_.keywords == model.vocabulary_.keywords
    assert loaded.top_keywords(5) == model.top_keywords(5)
    assert loaded.get_params()["n_topics"] == 4
    assert loaded.n_epochs_ == model.n_epochs_
    for name, tensor in model.projector_.state_dict().items():
        np.testing.assert_array_equal(
            loaded.projector_.state_dict()[name].numpy(), tensor.numpy(), err_msg=name
        )


def test_directory_holds_the_four_files_and_no_pickle(saved):
    assert {p.name for p in saved.iterdir()} == EXPECTED_FILES
    with safe_open(saved / "weights.safetensors", framework="pt") as f:
        keys = set(f.keys())
    assert any(k.startswith("projector.") for k in keys)
    assert any(k.startswith("decoder.") for k in keys)
    for name in EXPECTED_FILES - {"weights.safetensors"}:
        json.loads((saved / name).read_text(encoding="utf-8"))  # plain JSON, not a pickle
    # safetensors: an 8-byte little-endian header length, then a JSON header; a pickle (or
    # torch.save's zip) would start with b"\x80" or b"PK".
    raw = (saved / "weights.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert set(header) - {"__metadata__"} == keys
    assert not raw.startswith((b"\x80", b"PK"))


def test_manifest_records_checksum_and_size_of_every_other_file(saved):
    manifest = json.loads((saved / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == artifacts_module.FORMAT_VERSION
    assert set(manifest["files"]) == EXPECTED_FILES - {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = (saved / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)


# -- damaged directories -----------------------------------------------------------------------


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the tensor data, so only the checksum can tell
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_weights_fails_the_checksum(copy):
    flip_a_byte(copy / "weights.safetensors")
    with pytest.raises(ModelDirectoryError, match=r"weights\.safetensors .*checksum") as info:
        TopicModel.load(copy, device="cpu")
    assert info.value.path == str(copy)


@pytest.mark.parametrize("name", ["weights.safetensors", "vocabulary.json", "model.json"])
def test_a_missing_file_is_reported(copy, name):
    (copy / name).unlink()
    with pytest.raises(ModelDirectoryError, match=re.escape(f"{name} is missing")):
        TopicModel.load(copy, device="cpu")


def test_an_edited_json_file_fails_the_checksum(copy):
    vocab = json.loads((copy / "vocabulary.json").read_text(encoding="utf-8"))
    vocab["keywords"][0] = "tampered"
    (copy / "vocabulary.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="checksum"):
        TopicModel.load(copy, device="cpu")


def test_a_missing_manifest_is_reported(copy):
    (copy / "manifest.json").unlink()
    with pytest.raises(ModelDirectoryError, match=r"manifest\.json is missing"):
        TopicModel.load(copy, device="cpu")


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[]",
        b"null",
        pytest.param(
            b'{"format_version": 1, "files": ["weights.safetensors"]}', id="files-not-an-object"
        ),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
    ],
)
def test_a_garbage_manifest_is_reported(copy, content):
    (copy / "manifest.json").write_bytes(content)
    with pytest.raises(ModelDirectoryError, match=r"manifest\.json"):
        TopicModel.load(copy, device="cpu")


def test_a_manifest_of_another_format_version_is_reported(copy):
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="format version 99"):
        TopicModel.load(copy, device="cpu")


def test_a_path_that_does_not_exist_is_reported(tmp_path):
    with pytest.raises(ModelDirectoryError, match="not found") as info:
        TopicModel.load(tmp_path / "nowhere", device="cpu")
    assert info.value.path == str(tmp_path / "nowhere")


def test_a_file_instead_of_a_directory_is_reported(tmp_path):
    (tmp_path / "model").write_text("not a directory", encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="not a directory"):
        TopicModel.load(tmp_path / "model", device="cpu")


# -- writing -----------------------------------------------------------------------------------


def test_save_leaves_no_temporary_directory(model, tmp_path):
    model.save(tmp_path / "model")
    assert leftovers(tmp_path) == []
    assert {p.name for p in (tmp_path / "model").iterdir()} == EXPECTED_FILES


def test_save_creates_missing_parent_directories(model, tmp_path):
    path = model.save(tmp_path / "a" / "b" / "model")
    assert TopicModel.load(path, device="cpu").n_topics == 4


def test_save_onto_an_existing_empty_directory(model, tmp_path):
    (tmp_path / "model").mkdir()
    model.save(tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} == EXPECTED_FILES


def test_save_onto_a_non_empty_directory_needs_overwrite(model, items, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(ModelDirectoryError, match="already exists"):
        model.save(target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert leftovers(tmp_path) == []

    model.save(target, overwrite=True)
    assert {p.name for p in target.iterdir()} == EXPECTED_FILES
    assert leftovers(tmp_path) == []
    loaded = TopicModel.load(target, device="cpu")
    np.testing.assert_array_equal(loaded.transform(items[:20]), model.transform(items[:20]))


def test_overwrite_replaces_an_existing_model(model, tmp_path):
    target = tmp_path / "model"
    model.save(target)
    (target / "stray").write_text("x", encoding="utf-8")
    model.save(target, overwrite=True)
    assert {p.name for p in target.iterdir()} == EXPECTED_FILES
    assert leftovers(tmp_path) == []


def test_a_failure_while_writing_leaves_nothing_behind(model, tmp_path, monkeypatch):
    def broken_save_file(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts_module, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_overwriting_keeps_the_old_model(model, items, tmp_path, monkeypatch):
    target = model.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken_write_json(path, data):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts_module, "_write_json", broken_write_json)
    with pytest.raises(OSError, match="disk full"):
        model.save(target, overwrite=True)
    assert leftovers(tmp_path) == []
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    monkeypatch.undo()
    loaded = TopicModel.load(target, device="cpu")
    np.testing.assert_array_equal(loaded.transform(items[:20]), model.transform(items[:20]))
