"""Model directories: written atomically, verified on load.

A model directory holds `weights.safetensors` (no pickle), `vocabulary.json`, `model.json` and
`manifest.json`, which records the sha256 and size of each of the other files. It is written to a
temporary sibling directory and renamed into place, so a crash never leaves a half-written model
under the final name.

A model's version is its content: a digest of what determines its projections (the weights, the
vocabulary and the `content` the manifest records: the projector's configuration), and of
nothing else. `model.json` also holds the training's report (times, history) and runtime
parameters (device, verbose), which differ between two runs that learn the same model; they are
checked but do not make a new version. Directories written before the manifest recorded
`content` keep the version they had: the digest of the whole manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from topicproj.models.errors import ModelDirectoryError, NonFiniteError

from .tempfiles import remove_leftovers, temporary_directory

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
VOCABULARY = "vocabulary.json"
MODEL = "model.json"
MANIFEST = "manifest.json"
FILES = (WEIGHTS, VOCABULARY, MODEL)


def check_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    """Raise NonFiniteError naming the first floating tensor that holds an inf or a NaN."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NonFiniteError(f"the {what} weights {name!r} hold inf or NaN")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())


def replace_file(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a temporary sibling, fsynced, then renamed, so a
    reader sees the old content or the new, never part of either."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model_dir(
    path: str | Path,
    tensors: dict[str, torch.Tensor],
    vocabulary: dict[str, Any],
    model: dict[str, Any],
    *,
    overwrite: bool = False,
    unlisted: dict[str, Any] | None = None,
    content: dict[str, Any] | None = None,
) -> Path:
    """Write a model directory at `path`, atomically.

    `content`: what, besides the weights and the vocabulary, changes the model's projections
    (JSON); the version is their digest. `unlisted` maps file names to JSON content written
    beside the others but left out of the manifest, so that they can change without changing
    the version (topic labels).
    """
    path = Path(path)
    check_finite(tensors, "model's")  # a model of NaN is never written
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise ModelDirectoryError(path, "already exists; choose another path or overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)  # of a run that was killed while writing this model
    tmp = temporary_directory(path)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / WEIGHTS)
        _write_json(tmp / VOCABULARY, vocabulary)
        _write_json(tmp / MODEL, {"format_version": FORMAT_VERSION, **model})
        for name, data in (unlisted or {}).items():
            _write_json(tmp / name, data)
        manifest = {
            "format_version": FORMAT_VERSION,
            "files": {
                name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                for name in FILES
            },
            "content": content or {},
        }
        _write_json(tmp / MANIFEST, manifest)
        if path.exists():
            # Move the old model aside first: a rename cannot replace a non-empty directory.
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(old, path)  # put the old model back rather than lose it
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# The files whose bytes are the model's content; model.json is not one (see the module's doc).
CONTENT_FILES = (WEIGHTS, VOCABULARY)


def model_version(path: str | Path) -> str:
    """A model directory's version: the first 12 hex digits of the sha256 of its content.

    The content is the sha256 of the weights and of the vocabulary as the manifest records them
    (read_model_dir checks those against the files) and the manifest's `content`. A manifest
    without `content` (an older directory) keeps its old version: its own sha256.
    """
    manifest_path = Path(path) / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        content = manifest["content"]
        files = {name: manifest["files"][name]["sha256"] for name in CONTENT_FILES}
    except (OSError, ValueError, KeyError, TypeError):
        return _sha256(manifest_path)[:12]
    canonical = json.dumps(
        {"format_version": manifest.get("format_version"), "files": files, "content": content},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def read_model_dir(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Read and verify a model directory: (tensors, vocabulary, model)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelDirectoryError(path, "not found or not a directory")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
            raise TypeError("'files' must map each file name to an object")
    except FileNotFoundError:
        raise ModelDirectoryError(path, f"{MANIFEST} is missing; not a topicproj model") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise ModelDirectoryError(path, f"{MANIFEST} is damaged ({e})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelDirectoryError(
            path, f"format version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    for name in FILES:
        entry = files.get(name)
        if entry is None:
            raise ModelDirectoryError(path, f"{MANIFEST} does not list {name}")
        if not (path / name).is_file():
            raise ModelDirectoryError(path, f"{name} is missing")
        if _sha256(path / name) != entry.get("sha256"):
            raise ModelDirectoryError(path, f"{name} does not match its checksum; it is damaged")
    try:
        tensors = load_file(path / WEIGHTS)
        vocabulary = json.loads((path / VOCABULARY).read_text(encoding="utf-8"))
        model = json.loads((path / MODEL).read_text(encoding="utf-8"))
    except (SafetensorError, json.JSONDecodeError, OSError) as e:
        raise ModelDirectoryError(path, f"unreadable ({e})") from None
    try:
        # A model of NaN loads and answers NaN with OK: refused like a damaged file.
        check_finite(tensors, "stored")
    except NonFiniteError as e:
        raise ModelDirectoryError(path, str(e)) from None
    return tensors, vocabulary, model
