"""The model registry: the versions of a model kept under one root, and which one is active.

Layout under the root:

    versions/<version>/   a model directory (see `models.artifacts`), named by its version,
                          the digest of its manifest, so one content is stored once
    active                the active version's name on one line, replaced atomically
    served                the last version a server loaded and served, for the fallback
    lease                 the token of the server whose training jobs may add versions

Adding a version writes it beside the others under a temporary name and renames it into place;
activating one verifies every checksum first and then replaces the pointer with a rename. A
crash at any point leaves either the old state or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from topicproj.models.core.artifacts import (
    MANIFEST,
    MODEL,
    model_version,
    read_model_dir,
    replace_file,
)
from topicproj.models.core.lineage import Lineage
from topicproj.models.core.options import TrainOptions
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.errors import ModelDirectoryError, UnknownVersion

from .lease import Lease

log = logging.getLogger(__name__)

VERSIONS = "versions"
ACTIVE = "active"
SERVED = "served"
_VERSION = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class VersionInfo:
    version: str
    path: Path
    created: float  # seconds since the epoch, when the version was added
    active: bool
    lineage: Lineage | None = None  # its parent and topic similarities, when it has a parent


@dataclass(frozen=True)
class Refused:
    """A version that could not be loaded, and why."""

    version: str
    reason: str


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _described(directory: Path) -> dict:
    """A model directory's model.json, unverified ({} when unreadable): for listings only;
    loading a version verifies it."""
    try:
        info = json.loads((directory / MODEL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def _versions(self) -> Path:
        return self.root / VERSIONS

    def path(self, version: str) -> Path:
        """The directory of `version`. Only well-formed names exist, so no name can escape."""
        if not _VERSION.fullmatch(version) or not (self._versions / version).is_dir():
            raise UnknownVersion(version, self.root)
        return self._versions / version

    def versions(self) -> list[VersionInfo]:
        """Every version, oldest first."""
        if not self._versions.is_dir():
            return []
        active = self.active()
        out = []
        for d in self._versions.iterdir():
            if _VERSION.fullmatch(d.name) and d.is_dir():
                try:
                    created = (d / MANIFEST).stat().st_mtime
                except OSError:
                    created = d.stat().st_mtime
                lineage = _described(d).get("lineage")
                lineage = Lineage.from_dict(lineage) if isinstance(lineage, dict) else None
                out.append(VersionInfo(d.name, d, created, d.name == active, lineage))
        return sorted(out, key=lambda v: (v.created, v.version))

    def active(self) -> str | None:
        """The active version's name, or None when none was ever activated."""
        try:
            name = (self.root / ACTIVE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if _VERSION.fullmatch(name) else None

    def add(self, source: str | Path | TopicModel, lease: Lease | None = None) -> str:
        """Store a model (a fitted `TopicModel` or a model directory) and return its version.

        A directory is verified before it is stored (checksums, and every weight finite);
        adding the same content twice stores it once. With a `lease`, the version is added only
        while that lease is current (LeaseLost otherwise): a training job of a server that has
        since been replaced adds nothing.
        """
        self._versions.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self._versions))
        try:
            staged = tmp / "model"
            if isinstance(source, TopicModel):
                source.save(staged)
            else:
                read_model_dir(source)  # every checksum, before anything is stored
                shutil.copytree(source, staged)
            read_model_dir(staged)  # what is stored must load: checksums, finite weights
            version = model_version(staged)
            target = self._versions / version
            with lease.held() if lease is not None else contextlib.nullcontext():
                if not target.exists():
                    os.rename(staged, target)
                    _fsync_dir(self._versions)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("added model version %s to %s", version, self.root)
        return version

    def activate(self, version: str) -> None:
        """Make `version` the active one, after verifying every file of it."""
        read_model_dir(self.path(version))  # raises ModelDirectoryError if damaged
        replace_file(self.root / ACTIVE, version + "\n")
        _fsync_dir(self.root)
        log.info("activated model version %s", version)

    def served(self) -> str | None:
        """The last version a server loaded and served (`mark_served`), if any."""
        try:
            name = (self.root / SERVED).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if _VERSION.fullmatch(name) else None

    def mark_served(self, version: str) -> None:
        """Record that `version` loaded and served: the first fallback if the active fails."""
        if version != self.served():
            replace_file(self.root / SERVED, version + "\n")

    def options(self, version: str) -> TrainOptions:
        """The training options `version` was trained with (read without loading weights)."""
        params = _described(self.path(version)).get("params")
        if not isinstance(params, dict):
            raise ModelDirectoryError(self.path(version), f"{MODEL} holds no training options")
        names = {f.name for f in TrainOptions.fields()}
        return TrainOptions(**{k: v for k, v in params.items() if k in names})

    def load(self, version: str, device: str = "auto") -> TopicModel:
        return TopicModel.load(self.path(version), device=device)

    def load_active(self, device: str = "auto") -> tuple[TopicModel, list[Refused]]:
        """The active version, or, if it fails to load, the last version that was served
        (`mark_served`), then the newest version that loads. A version with a non-finite
        weight never loads, so it is never the fallback.

        Returns the model and the versions refused on the way (with the reason), so that the
        caller can log and count them. The pointer is left as it is: which version should be
        active is the operator's decision, not a side effect of a damaged file.
        """
        refused: list[Refused] = []
        active = self.active()
        served = self.served()
        candidates = [v for v in (active, served) if v]
        candidates += [v.version for v in reversed(self.versions()) if v.version not in candidates]
        candidates = list(dict.fromkeys(candidates))
        for version in candidates:
            try:
                return self.load(version, device), refused
            except (ModelDirectoryError, UnknownVersion) as e:
                log.error("model version %s refused: %s", version, e)
                refused.append(Refused(version, str(e)))
        if not candidates:
            raise ModelDirectoryError(self.root, "holds no model version")
        raise ModelDirectoryError(
            self.root,
            "no model version loads: " + "; ".join(f"{r.version}: {r.reason}" for r in refused),
        )
