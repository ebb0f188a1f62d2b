"""The live traffic profile on a real server: GetTraffic, `topicproj traffic`, the metrics
endpoint, and `topicproj drift` offline, all telling the same story about the same traffic."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.core.traffic import TrafficCounts, compare
from topicproj.service.cli.main import main
from topicproj.service.client import TopicClient

from ..conftest import RunningServer


def _wait_for_items(client: TopicClient, n: int) -> dict:
    """The hook runs just after the futures are set: poll until it has seen `n` items."""
    deadline = time.monotonic() + 10
    while True:
        report = client.traffic()
        if int(report["items_seen"]) >= n or time.monotonic() > deadline:
            return report
        time.sleep(0.02)


def test_rpc_cli_and_metrics_agree_on_the_same_traffic(
    serve, model: TopicModel, catalog_items: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    server: RunningServer = serve(traffic_bucket_items=50, traffic_buckets=4)
    items = [[*kws, "brand-new-theme"] for kws in catalog_items[:150]]
    with TopicClient(server.address) as client:
        for s in range(0, len(items), 30):
            client.project(items[s : s + 30])
        report = _wait_for_items(client, len(items))
    assert int(report["items_seen"]) == 150
    # Buckets of 50: the window holds the last 4 of them, here all 150 items.
    assert int(report["window_items"]) == 150 and int(report["window_capacity"]) == 200
    assert report["has_baseline"] is True
    # The same comparison computed here from the same items, without the server.
    Y = model.transform(items)
    batch = model.vocabulary_.map_batch(items)
    here = compare(
        TrafficCounts.of_batch(Y, batch.known, batch.unknown),
        model.baseline_.counts,
        reference_unknown_ratio=model.baseline_.unknown_ratio,
    )
    assert report["drift"] == pytest.approx(here["drift"], abs=1e-9)
    assert report["unassigned_ratio"] == pytest.approx(here["unassigned_ratio"], abs=1e-12)
    assert [t["share"] for t in report["topics"]] == pytest.approx(
        [t["share"] for t in here["topics"]], abs=1e-12
    )
    assert report["unknown_keywords"][0]["keyword"] == "brand-new-theme"
    # 150 occurrences, decayed by 3/4 at each of the two buckets opened since the first.
    assert 150 * 0.75**2 <= report["unknown_keywords"][0]["count"] <= 150
    assert [t["label"] for t in report["topics"]] == model.labels()
    # The metrics endpoint.
    assert server.metric("topicproj_topic_drift") == pytest.approx(report["drift"], abs=1e-9)
    assert server.metric("topicproj_unassigned_items_ratio") == pytest.approx(
        report["unassigned_ratio"], abs=1e-12
    )
    assert server.metric("topicproj_traffic_unknown_keywords_ratio") == pytest.approx(
        report["unknown_keyword_ratio"], abs=1e-12
    )
    assert server.metric("topicproj_baseline_unknown_keywords_ratio") == pytest.approx(
        model.baseline_.unknown_ratio, abs=1e-6
    )
    assert server.metric("topicproj_traffic_window_items") == 150
    assert server.registry.get_sample_value("topicproj_topic_active_ratio", {"topic": "0"}) is None
    # The command line, as JSON and as a table.
    assert main(["traffic", "--address", server.address, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["drift"] == pytest.approx(report["drift"], abs=1e-9)
    assert main(["traffic", "--address", server.address]) == 0
    text = capsys.readouterr().out
    assert f"drift: {report['drift']:.4f}" in text and "brand-new-theme" in text


def test_per_topic_series_only_behind_the_flag(serve, catalog_items: list[list[str]]) -> None:
    server: RunningServer = serve(traffic_topic_series=True)
    with TopicClient(server.address) as client:
        client.project(catalog_items[:40])
        report = _wait_for_items(client, 40)
    shares = [
        server.registry.get_sample_value("topicproj_topic_active_ratio", {"topic": str(t)})
        for t in range(len(report["topics"]))
    ]
    assert shares == pytest.approx([t["share"] for t in report["topics"]], abs=1e-12)


def test_no_traffic_profile_is_failed_precondition(serve) -> None:
    server: RunningServer = serve(traffic_profile=False)
    with TopicClient(server.address) as client, pytest.raises(grpc.RpcError) as e:
        client.traffic()
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert server.registry.get_sample_value("topicproj_topic_drift") is None


def test_drift_is_unavailable_for_a_model_without_a_baseline(
    serve, model: TopicModel, catalog_items: list[list[str]]
) -> None:
    baseline = model.baseline_
    model.baseline_ = None  # as a model directory written before baselines loads
    try:
        server: RunningServer = serve()
        with TopicClient(server.address) as client:
            client.project(catalog_items[:20])
            report = _wait_for_items(client, 20)
        drift = server.metric("topicproj_topic_drift")  # computed at scrape time
    finally:
        model.baseline_ = baseline
    assert report["has_baseline"] is False and "drift" not in report
    assert np.isnan(drift)


def _write_catalog(path: Path, items: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i, kws in enumerate(items):
            f.write(json.dumps({"id": f"m{i}", "keywords": kws}) + "\n")
    return path


def test_drift_offline_against_the_baseline_and_against_a_catalog(
    model_dir: Path,
    model: TopicModel,
    catalog_items: list[list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    same = _write_catalog(tmp_path / "same.jsonl", catalog_items)
    Y = model.transform(catalog_items)
    one_topic = [kws for kws, y in zip(catalog_items, Y, strict=True) if y.argmax() == 0 and y[0]]
    shifted = _write_catalog(tmp_path / "shifted.jsonl", one_topic)
    drifts = {}
    for name, path in (("same", same), ("shifted", shifted)):
        assert main(["drift", "--model", str(model_dir), "--input", str(path), "--json"]) == 0
        drifts[name] = json.loads(capsys.readouterr().out)["drift"]
    assert drifts["shifted"] > 5 * drifts["same"]
    argv = ["drift", "--model", str(model_dir), "--input", str(shifted), "--against", str(same)]
    assert main([*argv, "--json"]) == 0
    against = json.loads(capsys.readouterr().out)
    assert against["drift"] > 5 * drifts["same"]
    assert main(argv) == 0
    assert f"drift: {against['drift']:.4f}" in capsys.readouterr().out


def test_a_training_job_grows_added_topics_on_the_served_parent(serve, roots) -> None:
    from topicproj.models.store.registry import ModelRegistry

    from ..conftest import field_violations

    model_root, data_root = roots
    server: RunningServer = serve(model_root=model_root, data_root=data_root)
    parent = ModelRegistry(model_root).active()
    quick = {"min_df": 2, "max_epochs": 2, "learning_rate": 0.005}
    with TopicClient(server.address) as client:
        client.set_topic_labels({0: "kept theme"})
        for bad, field in (
            ({"from_scratch": True}, "add_topics"),
            ({"topics": 6}, "options.topics"),
        ):
            with pytest.raises(grpc.RpcError) as e:
                client.start_training(catalog_path="catalog.jsonl", add_topics=2, **bad, **quick)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field_violations(e.value)[0][0] == field
        job = client.start_training(
            catalog_path="catalog.jsonl", add_topics=2, activate_on_success=True, **quick
        )
        deadline = time.monotonic() + 600  # a spawned, niced process: slow on a busy machine
        while not (final := client.training_job(job["id"]))["done"]:
            assert time.monotonic() < deadline, final
            time.sleep(0.2)
        assert final["state"] == "STATE_SUCCEEDED", final
        assert final["options"]["topics"] == 7
        model = client.get_model()
    assert model["version"] != parent and model["topic_count"] == 7
    assert model["lineage"]["added_topic_count"] == 2
    assert model["topics"][0]["label"] == "kept theme"
    with TopicClient(server.address) as client:
        report = client.traffic()  # the child is served, with its own baseline
    assert report["version"] == model["version"] and len(report["topics"]) == 7
    assert report["has_baseline"] is True


def test_the_profile_takes_unknown_keywords_from_the_batch_without_a_second_lookup(
    model: TopicModel, catalog_items: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's own lookup finds the unknown keywords; recording it looks nothing up again."""
    from topicproj.service.metrics import ServiceMetrics
    from topicproj.service.serving.holder import ModelHolder
    from topicproj.service.serving.traffic import TrafficProfiles
    from topicproj.service.serving.validation import Bags
    from topicproj.service.settings import Settings

    holder = ModelHolder(model, ServiceMetrics())
    profiles = TrafficProfiles(holder, Settings(metrics_port=None))
    items = [[*catalog_items[0], "Zorblax", " zorblax "], ["qwyx", "ÉTÉ"], catalog_items[1]]
    requests = [
        Bags([k for it in part for k in it], np.array([len(it) for it in part]), None)
        for part in (items[:2], items[2:])
    ]
    results = holder.compute(requests)
    lookups: list[int] = []
    real = model.vocabulary_._lookup_raw  # what every lookup of raw keywords goes through
    monkeypatch.setattr(
        model.vocabulary_, "_lookup_raw", lambda kws: lookups.append(len(kws)) or real(kws)
    )
    profiles.record(requests, results)
    report = profiles.report(top_unknown=10)
    assert lookups == []
    unknown = {u["keyword"]: u["count"] for u in report["unknown_keywords"]}
    assert unknown["zorblax"] == 2 and unknown["qwyx"] == 1 and unknown["été"] == 1
    assert report["items_seen"] == 3


def test_gathered_batches_are_added_once_they_hold_a_largest_requests_keywords(
    model: TopicModel,
) -> None:
    """Gathering holds the requests' keyword strings: long items must not pile up thousands of
    items' worth of them before an update (the server's memory under the largest requests)."""
    from topicproj.service.metrics import ServiceMetrics
    from topicproj.service.serving.holder import ModelHolder
    from topicproj.service.serving.traffic import FLUSH_ITEMS, FLUSH_KEYWORDS, TrafficProfiles
    from topicproj.service.serving.validation import Bags
    from topicproj.service.settings import Settings

    holder = ModelHolder(model, ServiceMetrics())
    profiles = TrafficProfiles(holder, Settings(metrics_port=None))
    per_item = 4096  # max_keywords_per_item: 16 items hold a largest request's keywords
    items = FLUSH_KEYWORDS // per_item
    assert items < FLUSH_ITEMS
    keywords = [model.vocabulary_.keywords[i % 20] for i in range(per_item)]
    request = Bags(keywords * items, np.full(items, per_item), None)
    profiles.record([request], holder.compute([request]))
    assert profiles._pending == []  # added at once, not held until FLUSH_ITEMS items
    assert profiles._windows[model.version_][1].snapshot(1).items_seen == items
