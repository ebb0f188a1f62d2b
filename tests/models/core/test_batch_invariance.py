"""An item's topics do not depend on its batch: bitwise, on the CPU, whatever its neighbours.

The serving path maps and projects a whole batch of requests at once (`Vocabulary.map_flat`,
then `TopicModel.project_batch`), and so does offline projection. A user sending an item alone
and the same item inside a batch of strangers must get the same bits, not merely close floats.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topicproj.models.core.topic_model import TopicModel

from ..factories import small_synthetic


@pytest.fixture(scope="module", params=["overlap", "prelu"])
def model(request: pytest.FixtureRequest) -> TopicModel:
    """The default gate, and a ReLU-family baseline on the same code path."""
    s = small_synthetic(n_items=300)
    options = {"activation": request.param, "min_df": 2, "max_epochs": 3, "device": "cpu"}
    return TopicModel(5, **options).fit(s.catalog.keywords)


def _keyword_lists(vocabulary: list[str]) -> st.SearchStrategy[list[list[str]]]:
    # Known keywords in any case or spacing, unknown ones, repeats and empty items.
    keyword = st.one_of(
        st.sampled_from(vocabulary),
        st.sampled_from(vocabulary).map(lambda k: f"  {k.upper()} "),
        st.text(min_size=1, max_size=6),
    )
    return st.lists(st.lists(keyword, max_size=12), min_size=1, max_size=40)


def _project(model: TopicModel, items: list[list[str]], weights: list[list[float]] | None):
    """The serving path: one flat keyword list for the batch, then one projection."""
    counts = np.array([len(k) for k in items], dtype=np.int64)
    flat = [k for keywords in items for k in keywords]
    w = None if weights is None else np.array([x for ws in weights for x in ws], np.float32)
    batch = model.vocabulary_.map_flat(flat, counts, w)
    return model.project_batch(batch).cpu().numpy()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(data=st.data())
def test_an_items_topics_are_bitwise_the_same_alone_and_in_any_batch(model, data):
    vocabulary = model.vocabulary_.keywords
    batch = data.draw(_keyword_lists(vocabulary), label="batch")
    weighted = data.draw(st.booleans(), label="weighted")
    weights = None
    if weighted:
        weight = st.floats(0.0, 50.0, allow_nan=False, width=32)
        weights = [data.draw(st.lists(weight, min_size=len(k), max_size=len(k))) for k in batch]
    together = _project(model, batch, weights)
    for i, keywords in enumerate(batch):
        alone = _project(model, [keywords], None if weights is None else [weights[i]])
        # Bits, not tolerance: the same float32 values, zeros with the same sign.
        assert together[i].tobytes() == alone[0].tobytes(), (i, keywords)


def test_the_batch_cut_does_not_matter_offline(model):
    """`transform` cuts a catalog into batches; any cut gives the same bits."""
    rng = np.random.default_rng(0)
    vocabulary = model.vocabulary_.keywords
    items = [list(rng.choice(vocabulary, size=rng.integers(0, 9))) for _ in range(500)]
    whole = model.transform(items)
    for batch_size in (1, 7, 64, 499):
        assert model.transform(items, batch_size=batch_size).tobytes() == whole.tobytes()
