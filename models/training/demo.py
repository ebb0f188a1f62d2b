"""The demo model that `make run` serves: movie themes learned from the synthetic catalog.

One recipe, used by the server (when it has no model yet) and by `topicproj train --demo`.
"""

from __future__ import annotations

from pathlib import Path

from topicproj.models.core.options import DEMO
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.synthetic import DEMO as DEMO_CATALOG
from topicproj.models.data.synthetic import make_synthetic_catalog


def train_demo_model(path: str | Path, *, device: str = "auto", verbose: bool = True) -> Path:
    """Train the demo model and save it to `path` (replacing what is there)."""
    synthetic = make_synthetic_catalog(DEMO_CATALOG)
    model = TopicModel.from_options(DEMO, device=device, verbose=verbose)
    model.fit(synthetic.catalog.keywords)
    model.data_summary_ = {
        "source": "synthetic movie themes (models/data/themes.py)",
        "items": len(synthetic.catalog),
        "themes": synthetic.topic_names,
    }
    return model.save(path, overwrite=True)
