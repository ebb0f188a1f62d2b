"""The demo model that `make run` serves speaks movies: a seed example gets its theme."""

from __future__ import annotations

import numpy as np

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.themes import THEMES
from topicproj.models.training.demo import train_demo_model


def test_the_demo_model_projects_movie_keywords_onto_their_themes(tmp_path):
    model = TopicModel.load(train_demo_model(tmp_path / "demo", device="cpu", verbose=False))
    assert model.n_topics == len(THEMES)
    assert model.data_summary_["themes"] == list(THEMES)
    top = model.top_keywords(5)
    for item, theme in [
        (["love"], "romance"),
        (["alien", "dystopia"], "science fiction"),
        (["cowboy", "sheriff"], "western"),
    ]:
        y = model.transform([item])[0]
        assert (y > 0).any(), item  # the seed example no longer gets all zeros
        best = top[int(np.argmax(y))]
        assert len(set(best) & set(THEMES[theme])) >= 4, (item, best)
