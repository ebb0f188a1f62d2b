"""Training through the service, against a real server: jobs, uploads, cancellation, limits."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import grpc
import pytest

from topicproj.models.store.registry import ModelRegistry
from topicproj.service.client import TopicClient
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from ..conftest import field_violations

TOKEN = "train-token"
QUICK = {"min_df": 2, "max_epochs": 6, "learning_rate": 0.005}
# The served model has 5 topics; a job of another count trains from scratch, not as its child.
SCRATCH = {"topics": 4, "from_scratch": True}


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def watch_to_the_end(client: TopicClient, job_id: str) -> list[dict]:
    return list(client.watch_training_job(job_id))


def test_train_watch_and_activate_while_clients_keep_projecting(serve, roots, catalog_items):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, auth_token=TOKEN)
    before = ModelRegistry(model_root).active()
    failures: list[BaseException] = []
    versions: set[str] = set()
    stop = threading.Event()

    def project_forever() -> None:
        with TopicClient(server.address) as client:
            while not stop.is_set():
                try:
                    versions.add(client.project(catalog_items[:4]).model_version)
                except BaseException as e:  # any failure at all counts
                    failures.append(e)

    threads = [threading.Thread(target=project_forever) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        with TopicClient(server.address, token=TOKEN) as client:
            job = client.start_training(
                topics=5, catalog_path="catalog.jsonl", activate_on_success=True, seed=7, **QUICK
            )
            assert job["state"] in ("STATE_QUEUED", "STATE_RUNNING")
            states = watch_to_the_end(client, job["id"])
            time.sleep(0.3)  # some projections on the new version, too
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    final = states[-1]
    assert final["state"] == "STATE_SUCCEEDED", final
    new = final["response"]["model_version"]
    assert final["done"] and final["response"]["activated"] and new != before
    epochs = [s["progress"]["epoch"] for s in states]
    assert epochs == sorted(epochs) and 1 <= final["progress"]["epoch"] <= 6
    assert final["progress"]["validation_loss"] > 0
    assert final["options"]["seed"] == 7 and final["options"]["topics"] == 5
    assert final["options"]["mask_rate"] == pytest.approx(0.4)  # defaults filled in
    assert final["create_time"] <= final["update_time"]
    assert failures == []
    assert versions == {before, new}
    assert ModelRegistry(model_root).active() == new
    with TopicClient(server.address) as client:
        assert client.project(catalog_items[:1]).model_version == new


def test_uploaded_catalog_trains_and_a_bad_catalog_fails_with_its_message(serve, roots):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root)
    with TopicClient(server.address) as client:
        upload = client.upload_catalog(data_root / "catalog.jsonl", chunk_bytes=4096)
        job = client.start_training(**SCRATCH, upload_id=upload, **QUICK)
        final = watch_to_the_end(client, job["id"])[-1]
        assert final["state"] == "STATE_SUCCEEDED" and not final["response"]["activated"]
        listed = {m["version"]: m for m in client.list_models()}
        assert final["response"]["model_version"] in listed
        assert not listed[final["response"]["model_version"]]["serving"]

        bad = client.start_training(**SCRATCH, catalog_path="broken.jsonl", **QUICK)
        final = watch_to_the_end(client, bad["id"])[-1]
    assert final["state"] == "STATE_FAILED" and final["done"] and "response" not in final
    assert "CatalogError" in final["error"] and "row 2" in final["error"]
    # the job metrics: jobs by state, epochs, failures, the last job's duration
    assert server.metric("topicproj_training_jobs", {"state": "succeeded"}) == 1
    assert server.metric("topicproj_training_jobs", {"state": "failed"}) == 1
    assert server.metric("topicproj_training_jobs", {"state": "running"}) == 0
    assert server.metric("topicproj_training_epochs_total") >= 1
    assert server.metric("topicproj_training_job_failures_total") == 1
    assert server.metric("topicproj_training_last_job_duration_seconds") > 0
    labels = {"outcome": "succeeded"}
    assert server.metric("topicproj_training_job_duration_seconds_count", labels) == 1


def test_cancel_a_running_and_a_queued_job(serve, roots):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root)
    with TopicClient(server.address) as client:
        # Many epochs at a tiny learning rate: it runs until cancelled.
        slow = {"min_df": 2, "max_epochs": 2000, "learning_rate": 1e-7}
        running = client.start_training(topics=5, catalog_path="catalog.jsonl", **slow)
        queued = client.start_training(topics=5, catalog_path="catalog.jsonl", **slow)
        assert client.cancel_training_job(queued["id"])["state"] == "STATE_CANCELLED"
        for state in client.watch_training_job(running["id"]):
            if state["progress"]["epoch"] >= 1:
                break
        client.cancel_training_job(running["id"])
        final = watch_to_the_end(client, running["id"])[-1]
    assert final["state"] == "STATE_CANCELLED"
    assert len(ModelRegistry(model_root).versions()) == 1  # nothing was added


@pytest.mark.parametrize("path", ["../models/active", "/etc/passwd", "link/outside.txt"])
def test_paths_that_leave_the_data_root_are_refused(serve, roots, path):
    model_root, data_root = roots
    (data_root / "link").symlink_to(model_root)  # a symlink out of the root
    server = serve(model_root=model_root, data_root=data_root)
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).StartTraining(
            pb.StartTrainingRequest(catalog_path=path, options=pb.TrainingOptions(topics=4)),
            timeout=5,
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "outside the data root" in e.value.details()


def test_limits_and_tokens(serve, roots, tmp_path):
    model_root, data_root = roots
    server = serve(
        model_root=model_root, data_root=data_root, max_upload_bytes=1000, auth_token=TOKEN
    )
    s = stub(server.address)
    request = pb.StartTrainingRequest(catalog_path="catalog.jsonl")
    with pytest.raises(grpc.RpcError) as e:
        s.StartTraining(request, timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 5000)
    with TopicClient(server.address, token=TOKEN) as client:
        with pytest.raises(grpc.RpcError) as e:
            client.upload_catalog(big, chunk_bytes=512)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not any((model_root / "uploads").iterdir())  # nothing half-kept
        for bad, fragment in [
            ({"topics": 1}, "topics must be at least 2"),
            ({"topics": 4, "activation": "tanh"}, "activation must be one of"),
            ({"l1": -1.0}, "l1 must be in [0, 100.0]"),
            ({"topics": 4, "catalog_path": "missing.jsonl"}, "no catalog file"),
            ({"topics": 4, "upload_id": "f" * 32}, "no upload"),
            ({"catalog_path": ""}, "set one of catalog_path and upload_id"),
            (
                {"topics": 1025, "from_scratch": True},
                "1025 topics; a training job may have 1024 at most",
            ),
            (
                {"topics": 4, "from_scratch": True, "max_epochs": 2001},
                "a training job may run 2000 at most",
            ),
        ]:
            options = {"catalog_path": "catalog.jsonl"} | bad
            with pytest.raises(grpc.RpcError) as e:
                client.start_training(**options)
            assert fragment in e.value.details()
        with pytest.raises(grpc.RpcError) as e:  # the field at fault, machine-readable
            client.start_training(catalog_path="catalog.jsonl", l1=-1.0)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(e.value) == [("options.l1", "l1 must be in [0, 100.0], got -1.0")]
        with pytest.raises(grpc.RpcError) as e:  # named as the request names it, not n_topics
            client.start_training(catalog_path="catalog.jsonl", topics=1)
        assert field_violations(e.value) == [("options.topics", "topics must be at least 2, got 1")]
        with pytest.raises(grpc.RpcError) as e:
            client.training_job("nope")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # A job over the cost limits is refused before it is queued, and counted by limit.
    assert server.metric("topicproj_requests_refused_total", {"limit": "max_job_topics"}) == 1
    assert server.metric("topicproj_requests_refused_total", {"limit": "max_job_epochs"}) == 1
    assert not list(model_root.glob("jobs/*.json"))


def test_a_job_past_max_job_hours_is_stopped_and_fails(serve, roots):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, max_job_hours=2 / 3600)
    slow = {"min_df": 2, "max_epochs": 2000, "learning_rate": 1e-7, "patience": 2000}
    with TopicClient(server.address) as client:
        job = client.start_training(**SCRATCH, catalog_path="catalog.jsonl", **slow)
        final = watch_to_the_end(client, job["id"])[-1]
    assert final["state"] == "STATE_FAILED"
    assert "max_job_hours" in final["error"]
    assert server.metric("topicproj_training_job_failures_total") == 1
    assert len(ModelRegistry(model_root).versions()) == 1  # nothing was added


def test_a_server_without_a_model_root_cannot_train(server):
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).StartTraining(pb.StartTrainingRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_too_many_queued_jobs_are_refused(serve, roots):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, max_queued_jobs=1)
    slow = {"min_df": 2, "max_epochs": 2000, "learning_rate": 1e-7}
    with TopicClient(server.address) as client:
        first = client.start_training(**SCRATCH, catalog_path="catalog.jsonl", **slow)
        for state in client.watch_training_job(first["id"]):
            if state["state"] == "STATE_RUNNING":
                break
        second = client.start_training(**SCRATCH, catalog_path="catalog.jsonl", **slow)
        with pytest.raises(grpc.RpcError) as e:
            client.start_training(**SCRATCH, catalog_path="catalog.jsonl", **slow)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for job in (second, first):
            client.cancel_training_job(job["id"])


def test_the_async_client_trains_too(serve, roots):
    import asyncio

    from topicproj.service.client import AsyncTopicClient

    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root)

    async def train() -> list[dict]:
        async with AsyncTopicClient(server.address) as client:
            upload = await client.upload_catalog(data_root / "catalog.jsonl")
            job = await client.start_training(**SCRATCH, upload_id=upload, **QUICK)
            states = [s async for s in client.watch_training_job(job["id"])]
            assert (await client.training_job(job["id"]))["state"] == "STATE_SUCCEEDED"
            return states

    states = asyncio.run(train())
    assert states[-1]["state"] == "STATE_SUCCEEDED" and states[-1]["response"]["model_version"]


def test_jobs_outlive_a_restart(serve, roots, model):
    from ..conftest import RunningServer

    model_root, data_root = roots
    slow = {"min_df": 2, "max_epochs": 2000, "learning_rate": 1e-7}
    first = serve(model_root=model_root, data_root=data_root)
    with TopicClient(first.address) as client:
        done = client.start_training(**SCRATCH, catalog_path="catalog.jsonl", **QUICK)
        assert watch_to_the_end(client, done["id"])[-1]["state"] == "STATE_SUCCEEDED"
        running = client.start_training(**SCRATCH, catalog_path="catalog.jsonl", **slow)
        for state in client.watch_training_job(running["id"]):
            if state["state"] == "STATE_RUNNING":
                break
        queued = client.start_training(**SCRATCH, catalog_path="catalog.jsonl", **slow)
    first.stop()  # as a crash would, the running job does not get to finish

    second = RunningServer(model, model_root=model_root, data_root=data_root)
    try:
        with TopicClient(second.address) as client:
            assert client.training_job(done["id"])["state"] == "STATE_SUCCEEDED"
            interrupted = client.training_job(running["id"])
            assert (
                interrupted["state"] == "STATE_FAILED" and "server stopped" in interrupted["error"]
            )
            waiting = client.training_job(queued["id"])
            assert waiting["state"] in ("STATE_QUEUED", "STATE_RUNNING")  # queued again, not lost
            assert client.cancel_training_job(queued["id"])["id"] == queued["id"]
    finally:
        second.stop(0)


def test_old_uploads_are_swept_unless_a_job_needs_them(serve, roots):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root)
    slow = {"min_df": 2, "max_epochs": 2000, "learning_rate": 1e-7}
    with TopicClient(server.address) as client:
        kept = client.upload_catalog(data_root / "catalog.jsonl")
        gone = client.upload_catalog(data_root / "catalog.jsonl")
        job = client.start_training(**SCRATCH, upload_id=kept, **slow)
        jobs = server.server.jobs
        assert jobs is not None
        removed = jobs.sweep_uploads(now=time.time() + 25 * 3600)  # a day and an hour later
        assert removed == [gone]
        assert (model_root / "uploads" / kept).is_dir()
        client.cancel_training_job(job["id"])


def test_operators_train_and_swap_from_the_command_line(serve, roots):
    import subprocess
    import sys

    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, auth_token=TOKEN)
    before = ModelRegistry(model_root).active()
    repo = Path(__file__).resolve().parents[3]

    def topicproj(*args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "topicproj.service.cli", *args, "--address", server.address],
            cwd=repo,
            env={**os.environ, "TOPICPROJ_AUTH_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=120,
        )

    trained = topicproj(
        *("jobs", "start", "--catalog-path", "catalog.jsonl"),  # a child of the served one
        *("--min-df", "2", "--max-epochs", "4", "--learning-rate", "0.005"),
        *("--activate", "--watch"),
    )
    assert trained.returncode == 0, trained.stderr
    last = trained.stdout.strip().splitlines()[-1]
    assert " SUCCEEDED " in last and "(activated)" in last and f" from {before} " in last
    new = last.split(" model ")[1].split()[0]
    listed = topicproj("models", "list").stdout.splitlines()
    assert len(listed) == 2 and any(
        line.startswith(new) and "active serving" in line and f"parent {before}" in line
        for line in listed
    )
    swapped = topicproj("models", "activate", before)
    assert swapped.returncode == 0 and f"serving {before}" in swapped.stdout
    refused = topicproj("models", "activate", new, token="wrong")
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
    missing = topicproj("jobs", "show", "nope")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr


def test_job_records_of_the_previous_format_still_load():
    """Records written before the options were one object keep their jobs on upgrade."""
    from topicproj.service.jobs.spec import TrainSpec

    legacy = {
        "catalog": "/data/c.jsonl",
        "format": None,
        "topics": 5,
        "activation": "relu",
        "min_df": None,  # None (or 0 on the wire) meant the default
        "max_epochs": 6,
        "learning_rate": None,
        "l1": None,
        "seed": 7,
        "activate_on_success": True,
    }
    spec = TrainSpec.from_record(legacy)
    assert (spec.options.n_topics, spec.options.activation) == (5, "relu")
    assert (spec.options.max_epochs, spec.options.random_state, spec.options.min_df) == (6, 7, 3)
    assert TrainSpec.from_record(spec.to_record()) == spec  # and the new format round-trips
