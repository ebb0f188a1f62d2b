"""Explanations over the gRPC API and offline: exact, and absent unless asked for."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pyarrow.parquet as pq
import pytest

from topicproj.models.offline.projection import project_catalog
from topicproj.service.cli.main import main
from topicproj.service.client import TopicClient

from ..conftest import field_violations


def check_exact(explanations: list[dict], topics: np.ndarray, model) -> None:  # type: ignore[no-untyped-def]
    """The terms and the bias add up to the pre-activation; the gate gives the projection."""
    slopes = model.projector_.activation.slope
    for explanation, row in zip(explanations, topics, strict=True):
        active = {t["topic"]: t for t in explanation["active_topics"]}
        assert set(active) == set(np.flatnonzero(row))
        for t in explanation["active_topics"] + explanation["closed_topics"]:
            total = t["bias"] + sum(k["contribution"] for k in t["keywords"])
            assert total == pytest.approx(t["pre_activation"], rel=1e-5, abs=1e-5)
            h = t["pre_activation"]
            rectified = h if h >= 0 else h * float(slopes[t["topic"]])
            assert rectified * t["gate"] == pytest.approx(row[t["topic"]], rel=1e-5, abs=1e-6)
        for t in explanation["closed_topics"]:
            assert row[t["topic"]] == 0 and (t["gate"] == 0 or t["pre_activation"] < 0)


@pytest.mark.parametrize("fast", [True, False])
def test_explanations_over_grpc_are_exact_and_match_the_python_api(
    server, model, catalog_items, fast
):
    items = [*catalog_items[:30], [], ["never seen"]]
    with TopicClient(server.address) as client:
        plain = client.project(items, fast=fast)
        got = client.project(items, fast=fast, explain=1000)  # every keyword: sums are whole
        few = client.project(items[:5], fast=fast, explain=2)
    assert plain.explanations is None  # nothing unless asked for
    np.testing.assert_array_equal(got.topics, plain.topics)
    check_exact(got.explanations, got.topics, model)
    local = model.explain(items[:5], top_keywords=2)
    for remote, mine in zip(few.explanations, local, strict=True):
        assert [t["topic"] for t in remote["active_topics"]] == [t.topic for t in mine.active]
        for r, m in zip(remote["active_topics"], mine.active, strict=True):
            assert [k["keyword"] for k in r["keywords"]] == [k for k, _ in m.keywords]
            assert len(r["keywords"]) <= 2


def test_a_research_form_cannot_be_explained(serve, tmp_path):
    import lab  # noqa: F401  (builds the research form, in this process)
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.synthetic import make_synthetic_catalog

    from ..conftest import RunningServer

    items = make_synthetic_catalog(n_items=200, n_topics=4, keywords_per_topic=6).catalog.keywords
    odd = TopicModel(4, activation="overlap_sigmoid", min_df=2, max_epochs=2, device="cpu")
    odd.fit(items).save(tmp_path / "odd")
    server = RunningServer(TopicModel.load(tmp_path / "odd", device="cpu"))
    try:
        with TopicClient(server.address) as client, pytest.raises(grpc.RpcError) as e:
            client.project(items[:2], explain=3)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(e.value)[0][0] == "explain"
    finally:
        server.stop(0)


def test_offline_explanations_are_a_json_column(model, model_dir, catalog_items, tmp_path):
    src = tmp_path / "in.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for i, keywords in enumerate(catalog_items[:40]):
            f.write(json.dumps({"id": f"m{i}", "keywords": keywords}) + "\n")
    out = tmp_path / "out.parquet"
    args = ["project", "--model", str(model_dir), "--input", str(src), "--output", str(out)]
    assert main([*args, "--explain", "1000", "--quiet"]) == 0
    table = pq.read_table(out)
    topics = np.stack(table["topics"].to_numpy(zero_copy_only=False))
    explanations = [json.loads(e) for e in table["explanation"].to_pylist()]
    check_exact(explanations, topics, model)
    with pytest.raises(Exception, match="parquet"):
        project_catalog(model, [src], tmp_path / "dense.npy", explain=3, progress=False)
    assert main([*args, "--engine", "ray", "--explain", "3", "--quiet"]) == 2


def _same(a: object, b: object, path: str = "") -> None:
    """Equal structure, keys and strings; floats equal to float32 precision (the wire's)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path  # JSON objects: unordered
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert float(a) == pytest.approx(float(b), rel=1e-6, abs=1e-6), path  # type: ignore[arg-type]
    else:
        assert a == b, path


@pytest.mark.parametrize("fast", [True, False])
def test_one_explanation_schema_online_and_offline(
    server, model_dir, catalog_items, tmp_path, fast
):
    """The client's explanations and the offline column are the proto's `Explanation` in its
    JSON mapping, field for field, on the same items."""
    from google.protobuf import json_format

    from topicproj.v1 import topicproj_pb2 as pb

    items = [*catalog_items[:12], ["never seen"]]
    src = tmp_path / "in.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for i, keywords in enumerate(items):
            f.write(json.dumps({"id": f"m{i}", "keywords": keywords}) + "\n")
    out = tmp_path / "out.parquet"
    args = ["--model", str(model_dir), "--input", str(src), "--output", str(out)]
    assert main(["project", *args, "--explain", "3", "--quiet"]) == 0
    offline = [json.loads(e) for e in pq.read_table(out)["explanation"].to_pylist()]
    with TopicClient(server.address) as client:
        online = client.project(items, fast=fast, explain=3).explanations
    assert online is not None and len(online) == len(offline) == len(items)
    assert any(e["active_topics"] for e in offline) and any(e["closed_topics"] for e in offline)
    for mine, theirs in zip(offline, online, strict=True):
        _same(mine, theirs)
        # The offline JSON is the message's JSON mapping: it parses as one, nothing left over.
        message = json_format.ParseDict(mine, pb.Explanation())
        _same(
            json_format.MessageToDict(
                message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            ),
            mine,
        )
