"""Topic labels: a short name per topic, derived from its top keywords unless a person set one.

The labels a person set live in `labels.json` beside the weights, as `{"topic": "label"}` for
the topics that have one. The file is outside the manifest on purpose: a label names a topic
and changes nothing it computes, so relabelling keeps the version (the manifest's digest) and
can happen on a model that is being served. It is replaced atomically, and a damaged file is
reported and read as "no labels set" rather than making the model unloadable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from .artifacts import replace_file

log = logging.getLogger(__name__)

LABELS = "labels.json"
MAX_LABEL_LENGTH = 64
DERIVED_KEYWORDS = 3


def derived_label(top_keywords: Sequence[str]) -> str:
    """The default label: the topic's leading keywords, heaviest first."""
    return " / ".join(top_keywords[:DERIVED_KEYWORDS])


def check_labels(labels: Mapping[int, str], n_topics: int) -> dict[int, str]:
    """Labels cleaned of surrounding space; ValueError names the first bad one.

    An empty label means "back to the derived one" and is kept as such, so that callers can
    clear a label with the same call that sets one.
    """
    out: dict[int, str] = {}
    for topic, label in labels.items():
        if isinstance(topic, bool) or not isinstance(topic, int) or not 0 <= topic < n_topics:
            raise ValueError(f"topic {topic!r} is not a topic of this model (0..{n_topics - 1})")
        if not isinstance(label, str):
            raise ValueError(f"the label of topic {topic} must be a string, got {label!r}")
        label = label.strip()
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(
                f"the label of topic {topic} has {len(label)} characters; "
                f"at most {MAX_LABEL_LENGTH} are allowed"
            )
        if any(not ch.isprintable() for ch in label):
            raise ValueError(f"the label of topic {topic} holds a control character")
        out[topic] = label
    return out


def merge_labels(current: Mapping[int, str], changes: Mapping[int, str]) -> dict[int, str]:
    """`current` with `changes` applied; an empty label removes the topic's own label."""
    merged = {**current, **changes}
    return {k: v for k, v in sorted(merged.items()) if v}


def read_labels(directory: str | Path, n_topics: int) -> dict[int, str]:
    """The labels set in a model directory; {} when none were set or the file is damaged."""
    path = Path(directory) / LABELS
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        return merge_labels({}, check_labels({int(k): v for k, v in raw.items()}, n_topics))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as e:
        log.error("%s is unreadable (%s); the topics keep their derived labels", path, e)
        return {}


def write_labels(directory: str | Path, labels: Mapping[int, str]) -> None:
    """Replace the labels file of a model directory atomically (removed when `labels` is empty)."""
    directory = Path(directory)
    path = directory / LABELS
    if not labels:
        path.unlink(missing_ok=True)
        return
    content = {str(k): v for k, v in sorted(labels.items())}
    replace_file(path, json.dumps(content, ensure_ascii=False, indent=1))
