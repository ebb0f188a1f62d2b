"""Hostile numbers against a real server: never a wrong number answered with OK."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from topicproj.models.core.topic_model import TopicModel
from topicproj.service.cli.main import main
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from ..conftest import RunningServer, field_violations

TOKEN = "numbers-token"


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def weighted(keywords: list[str], weights: list[float]) -> pb.ProjectRequest:
    item = pb.Item(keywords=keywords, weights=weights)
    return pb.ProjectRequest(item_list=pb.ItemList(items=[item]))


@pytest.mark.parametrize("option", ["learning_rate", "l1", "mask_rate", "target_zeros"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_training_options_are_refused_naming_the_field(serve, roots, option, value):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, auth_token=TOKEN)
    request = pb.StartTrainingRequest(
        catalog_path="catalog.jsonl", options=pb.TrainingOptions(**{option: value})
    )
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).StartTraining(
            request, metadata=[("authorization", f"Bearer {TOKEN}")], timeout=10
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e.value)[0][0] == f"options.{option}"
    assert "finite" in e.value.details()


@pytest.mark.parametrize("weight", [3e38, float("inf"), float("nan"), -1.0, 1e6 * 1.01])
def test_weights_beyond_the_maximum_are_refused(server, model, weight):
    words = model.vocabulary_.keywords[:2]
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).Project(weighted(words, [1.0, weight]), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e.value)[0][0] == "item_list.items[0].weights"


def test_no_allowed_input_reaches_a_non_finite_output(serve, model):
    """The largest allowed weights on the largest allowed items project to finite numbers,
    so the INTERNAL path below is a defect's, never a caller's."""
    limits = Settings()
    top = limits.max_keyword_weight
    server = serve()
    vocab = model.vocabulary_.keywords
    n = limits.max_keywords_per_item
    rng = np.random.default_rng(0)
    requests = [
        weighted([vocab[0]] * n, [top] * n),  # one keyword, repeated: the largest norm
        weighted([vocab[i % len(vocab)] for i in range(n)], [top] * n),
        weighted(list(rng.choice(vocab, n)), list(rng.uniform(0, top, n))),
        weighted(list(rng.choice(vocab, 3)), [top, 0.0, np.finfo(np.float32).tiny]),
    ]
    for request in requests:
        reply = stub(server.address).Project(request, timeout=30)
        topics = np.array(reply.projection_list.projections[0].topics)
        assert len(topics) == model.n_topics and np.isfinite(topics).all()
    assert server.metric("topicproj_nonfinite_batches_total") == 0


def test_a_batch_that_projects_nan_fails_with_internal_and_is_counted(model_dir):
    # A model of huge but finite weights (the registry stores it) overflows float32: the
    # server must refuse the batch rather than answer NaN with OK.
    model = TopicModel.load(model_dir, device="cpu")
    model.projector_.keyword_topics.data.mul_(1e30)
    server = RunningServer(model, port=0, metrics_port=0)
    try:
        words = model.vocabulary_.keywords[:50]
        with pytest.raises(grpc.RpcError) as e:
            stub(server.address).Project(weighted(words, [1e6] * 50), timeout=10)
        assert e.value.code() == grpc.StatusCode.INTERNAL
        assert "non-finite" in e.value.details()
        assert server.metric("topicproj_nonfinite_batches_total") == 1
        assert server.metric_reaches(
            "topicproj_requests_total", {"rpc": "Project", "code": "INTERNAL"}, 1
        )
    finally:
        server.stop(0)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--synthetic-seed", "1", "--out", "never", "--learning-rate", "inf"],
        ["jobs", "start", "--catalog-path", "c.jsonl", "--l1", "nan"],
    ],
)
def test_the_command_line_refuses_non_finite_options(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "not a finite number" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
