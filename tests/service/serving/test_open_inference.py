"""The Open Inference Protocol beside the domain API, on the same port and the same batcher.

The raw-tensor tests use the project's own generated stubs; the last ones run the real
tritonclient from its own environment (it pins protobuf below 7, which the project's generated
code refuses), built by `make test` and named by TOPICPROJ_TRITON_PYTHON.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess

import grpc
import numpy as np
import pytest

from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.oip.v2 import grpc_predict_v2_pb2_grpc as oip_grpc
from topicproj.service.client import TopicClient

from ..conftest import field_violations

TRITON_PYTHON = os.environ.get("TOPICPROJ_TRITON_PYTHON")
if TRITON_PYTHON:  # the test runs it from a temporary folder
    TRITON_PYTHON = os.path.abspath(TRITON_PYTHON)


def stub(address: str) -> oip_grpc.GRPCInferenceServiceStub:
    return oip_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(address))


def bytes_tensor(words: list[str]) -> bytes:
    """A raw BYTES tensor: each element a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(w.encode())) + w.encode() for w in words)


def infer_request(items: list[list[str]], *, raw: bool, weights: bool = False):  # type: ignore[no-untyped-def]
    flat = [k for item in items for k in item]
    counts = [len(item) for item in items]
    tensor = oip.ModelInferRequest.InferInputTensor
    request = oip.ModelInferRequest(
        model_name="topicproj",
        id="r1",
        inputs=[
            tensor(name="keywords", datatype="BYTES", shape=[len(flat)]),
            tensor(name="keyword_counts", datatype="INT32", shape=[len(counts)]),
        ],
    )
    if weights:
        request.inputs.add(name="weights", datatype="FP32", shape=[len(flat)])
    if raw:
        request.raw_input_contents.append(bytes_tensor(flat))
        request.raw_input_contents.append(np.array(counts, "<i4").tobytes())
        if weights:
            request.raw_input_contents.append(np.full(len(flat), 2.0, "<f4").tobytes())
    else:
        request.inputs[0].contents.bytes_contents.extend(k.encode() for k in flat)
        request.inputs[1].contents.int_contents.extend(counts)
        if weights:
            request.inputs[2].contents.fp32_contents.extend([2.0] * len(flat))
    return request


def topics_of(response: oip.ModelInferResponse) -> np.ndarray:
    [output] = response.outputs
    assert output.name == "topics" and output.datatype == "FP32"
    if response.raw_output_contents:
        flat = np.frombuffer(response.raw_output_contents[0], "<f4")
    else:
        flat = np.array(output.contents.fp32_contents, dtype=np.float32)
    return flat.reshape(list(output.shape))


@pytest.mark.parametrize("raw", [True, False])
def test_model_infer_equals_the_domain_api(server, model, catalog_items, raw):
    items = [*catalog_items[:30], [], ["never seen"]]
    response = stub(server.address).ModelInfer(infer_request(items, raw=raw), timeout=10)
    assert response.model_name == "topicproj" and response.model_version == model.version_
    assert response.id == "r1" and bool(response.raw_output_contents) == raw
    with TopicClient(server.address) as client:
        domain = client.project(items)
    np.testing.assert_array_equal(topics_of(response), domain.topics)
    weighted = stub(server.address).ModelInfer(
        infer_request(items, raw=raw, weights=True), timeout=10
    )
    expected = model.project_batch(
        model.vocabulary_.map_batch(items, [[2.0] * len(i) for i in items])
    ).numpy()
    np.testing.assert_allclose(topics_of(weighted), expected, rtol=1e-6, atol=1e-7)
    labels = {"rpc": "ModelInfer", "code": "OK"}
    assert server.metric_reaches("topicproj_requests_total", labels, 2)
    assert server.metric("topicproj_items_total", {"rpc": "ModelInfer"}) == 2 * len(items)


def test_health_and_metadata(server, model):
    s = stub(server.address)
    assert s.ServerLive(oip.ServerLiveRequest(), timeout=5).live
    assert s.ServerReady(oip.ServerReadyRequest(), timeout=5).ready
    assert s.ModelReady(oip.ModelReadyRequest(name="topicproj"), timeout=5).ready
    ready = oip.ModelReadyRequest(name="topicproj", version=model.version_)
    assert s.ModelReady(ready, timeout=5).ready
    other = oip.ModelReadyRequest(name="topicproj", version="0ther")
    assert not s.ModelReady(other, timeout=5).ready
    meta = s.ModelMetadata(oip.ModelMetadataRequest(name="topicproj"), timeout=5)
    assert meta.versions == [model.version_]
    assert {(t.name, t.datatype) for t in meta.inputs} == {
        ("keywords", "BYTES"),
        ("keyword_counts", "INT32"),
        ("weights", "FP32"),
    }
    assert [list(t.shape) for t in meta.outputs] == [[-1, model.n_topics]]
    assert s.ServerMetadata(oip.ServerMetadataRequest(), timeout=5).name == "topicproj"
    with pytest.raises(grpc.RpcError) as e:
        s.ModelMetadata(oip.ModelMetadataRequest(name="resnet"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "resnet" in e.value.details()


def _broken(change: str) -> oip.ModelInferRequest:
    request = infer_request([["a", "b"], ["c"]], raw=True)
    if change == "datatype":
        request.inputs[1].datatype = "FP32"
    elif change == "shape":
        request.inputs[0].shape[:] = [3, 1]
    elif change == "counts":
        request.raw_input_contents[1] = np.array([2, 2], "<i4").tobytes()
    elif change == "truncated":
        request.raw_input_contents[0] = request.raw_input_contents[0][:-1]
    elif change == "missing":
        del request.inputs[1]
        del request.raw_input_contents[1]
    elif change == "unknown":
        request.inputs[1].name = "ids"
    elif change == "raw count":
        del request.raw_input_contents[1]
    elif change == "negative":
        request.raw_input_contents[1] = np.array([4, -1], "<i4").tobytes()
    elif change == "utf-8":
        request.raw_input_contents[0] = bytes_tensor(["a", "b"]) + b"\x01\x00\x00\x00\xff"
    return request


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ("datatype", "inputs[1].datatype", "must be INT32 or INT64, not 'FP32'"),
        ("shape", "inputs[0].shape", "one-dimensional"),
        ("counts", "inputs[1]", "add up to 4, but there are 3 keywords"),
        ("truncated", "raw_input_contents[0]", "runs past the tensor's end"),
        ("missing", "inputs", "'keyword_counts' is missing"),
        ("unknown", "inputs[1].name", "unknown input 'ids'"),
        ("raw count", "raw_input_contents", "1 raw contents for 2 inputs"),
        ("negative", "raw_input_contents[1]", "must not be negative"),
        ("utf-8", "raw_input_contents[0]", "not UTF-8"),
    ],
)
def test_bad_tensors_get_invalid_argument_naming_the_field(server, change, field, fragment):
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).ModelInfer(_broken(change), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in e.value.details()
    assert [f for f, _ in field_violations(e.value)] == [field]


def test_the_same_limits_as_the_domain_api(serve):
    server = serve(max_items_per_request=2, max_keyword_length=5)
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).ModelInfer(infer_request([["a"]] * 3, raw=True), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit is 2" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).ModelInfer(infer_request([["toolong"]], raw=False), timeout=5)
    assert "item 0 has a keyword of 7 characters" in e.value.details()


TRITON_SCRIPT = r"""
import json, sys
import numpy as np
import tritonclient.grpc as tc
from tritonclient.utils import InferenceServerException

address, items = sys.argv[1], json.loads(sys.argv[2])
client = tc.InferenceServerClient(url=address)
out = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready("topicproj"),
    "inputs": [i.name for i in client.get_model_metadata("topicproj").inputs],
}
flat = [k.encode() for item in items for k in item]
counts = [len(item) for item in items]


def infer(count_type="INT32"):
    keywords = tc.InferInput("keywords", [len(flat)], "BYTES")
    keywords.set_data_from_numpy(np.array(flat, dtype=np.object_))
    per_item = tc.InferInput("keyword_counts", [len(counts)], count_type)
    per_item.set_data_from_numpy(np.array(counts, dtype=np.int32 if count_type == "INT32"
                                          else np.int64))
    result = client.infer("topicproj", [keywords, per_item],
                          outputs=[tc.InferRequestedOutput("topics")])
    return result.as_numpy("topics"), result.get_response().model_version


topics, version = infer()
out["topics"] = topics.tolist()
out["dtype"] = str(topics.dtype)
out["version"] = version
out["topics64"] = infer("INT64")[0].tolist()
bad = tc.InferInput("keywords", [len(flat)], "FP32")
bad.set_data_from_numpy(np.zeros(len(flat), dtype=np.float32))
per_item = tc.InferInput("keyword_counts", [len(counts)], "INT32")
per_item.set_data_from_numpy(np.array(counts, dtype=np.int32))
try:
    client.infer("topicproj", [bad, per_item])
except InferenceServerException as e:
    out["error"] = [e.status(), e.message()]
print(json.dumps(out))
"""


@pytest.mark.skipif(not TRITON_PYTHON, reason="TOPICPROJ_TRITON_PYTHON unset (make test sets it)")
def test_tritonclient_gets_exactly_the_domain_apis_numbers(server, model, catalog_items, tmp_path):
    items = [*catalog_items[:40], [], ["never seen"]]
    result = subprocess.run(
        [TRITON_PYTHON, "-c", TRITON_SCRIPT, server.address, json.dumps(items)],
        cwd=tmp_path,  # the installed tritonclient only, nothing of this checkout
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["live"] and out["ready"] and out["model_ready"]
    assert out["inputs"] == ["keywords", "keyword_counts", "weights"]
    with TopicClient(server.address) as client:
        domain = client.project(items)
    assert out["dtype"] == "float32" and out["version"] == domain.model_version
    np.testing.assert_array_equal(np.array(out["topics"], dtype=np.float32), domain.topics)
    np.testing.assert_array_equal(np.array(out["topics64"], dtype=np.float32), domain.topics)
    status, message = out["error"]
    assert status == "StatusCode.INVALID_ARGUMENT" and "must be BYTES" in message
