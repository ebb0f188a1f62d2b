"""Topics that keep their numbers and labels across versions, through a real server."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from topicproj.models.core.labels import read_labels
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.store.registry import ModelRegistry
from topicproj.service.client import TopicClient
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from ..conftest import field_violations

TOKEN = "label-token"
QUICK = {"min_df": 2, "max_epochs": 8, "learning_rate": 0.01}


def test_labels_are_set_with_the_token_and_travel_with_models_and_top_topics(
    serve, roots, catalog_items
):
    model_root, _ = roots
    server = serve(model_root=model_root, auth_token=TOKEN)
    registry = ModelRegistry(model_root)
    version = registry.active()
    stub = pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(server.address))
    with pytest.raises(grpc.RpcError) as e:
        stub.SetTopicLabels(pb.SetTopicLabelsRequest(labels={0: "nope"}), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED

    with TopicClient(server.address, token=TOKEN) as client:
        derived = [t["label"] for t in client.get_model()["topics"]]
        labels = client.set_topic_labels({1: "Heists", 3: "Space"})
        assert labels == [derived[0], "Heists", derived[2], "Space", derived[4]]
        with pytest.raises(grpc.RpcError) as e:
            client.set_topic_labels({7: "no such topic"})
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(e.value)[0][0] == "labels"
        with pytest.raises(grpc.RpcError) as e:
            client.set_topic_labels({0: "x"}, version="0123456789ab")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND

        model = client.get_model()
        assert model["version"] == version  # a label changes no topic, so not the version
        assert [t["label"] for t in model["topics"]] == labels
        assert [t["label_set"] for t in model["topics"]] == [False, True, False, True, False]
        # On disk beside the weights: a restarted server serves the same labels.
        assert read_labels(registry.path(version), 5) == {1: "Heists", 3: "Space"}

        for fast in (True, False):  # both response forms carry the top topics' labels
            out = client.project(catalog_items[:20], top_k=2, fast=fast)
            pairs = [
                (topic, label)
                for top, names in zip(out.top, out.top_labels, strict=True)
                for (topic, _), label in zip(top, names, strict=True)
            ]
            assert pairs and all(label == labels[topic] for topic, label in pairs)


def test_a_job_on_a_running_server_trains_an_aligned_child_that_keeps_the_labels(
    serve, roots, catalog_items
):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, auth_token=TOKEN)
    parent = ModelRegistry(model_root).active()
    with TopicClient(server.address, token=TOKEN) as client:
        names = {k: f"theme {k}" for k in range(5)}
        client.set_topic_labels(names)
        before = client.project(catalog_items[:200]).topics
        # No parent named: the served version is the parent, and its options are the base.
        job = client.start_training(catalog_path="catalog.jsonl", activate_on_success=True, **QUICK)
        assert job["parent_version"] == parent
        final = list(client.watch_training_job(job["id"]))[-1]
        assert final["state"] == "STATE_SUCCEEDED", final
        child = final["response"]["model_version"]

        model = client.get_model()  # the hot swap has happened: the child is served
        assert model["version"] == child != parent
        lineage = model["lineage"]
        assert lineage["parent_version"] == parent
        similarity = lineage["topic_similarity"]
        kept = [k for k, s in enumerate(similarity) if s >= lineage["kept_threshold"]]
        assert lineage["kept_topic_count"] == len(kept) >= 4, similarity
        for k, topic in enumerate(model["topics"]):
            if k in kept:  # the same number, the same meaning, the same label
                assert topic["label"] == names[k] and topic["label_set"]
            else:
                assert not topic["label_set"]
        listed = {m["version"]: m for m in client.list_models()}
        assert listed[child]["lineage"]["parent_version"] == parent
        assert "lineage" not in listed[parent] or not listed[parent]["lineage"]["parent_version"]

        # What a stored vector meant yesterday it means today, topic by topic.
        after = client.project(catalog_items[:200]).topics
        cos = (before * after).sum(1) / np.maximum(
            np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1), 1e-12
        )
        assert np.median(cos[(before.sum(1) > 0) & (after.sum(1) > 0)]) > 0.8

        # A child cannot change the parent's topic count; from scratch it can.
        with pytest.raises(grpc.RpcError) as e:
            client.start_training(catalog_path="catalog.jsonl", topics=4, **QUICK)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(e.value)[0][0] == "options.topics"
        fresh = client.start_training(
            catalog_path="catalog.jsonl", topics=4, from_scratch=True, **QUICK
        )
        assert fresh["parent_version"] == ""
        client.cancel_training_job(fresh["id"])

    # The registry's copy agrees with what the server said.
    stored = TopicModel.load(ModelRegistry(model_root).path(child), device="cpu")
    assert stored.lineage_.parent == parent and stored.lineage_.similarity == pytest.approx(
        similarity, abs=1e-6
    )
