"""The vectorised decoders of every wire form give what the element-by-element ones give.

The request path decodes the packed form, the `item_list` form and the Open Inference
Protocol's BYTES tensors (typed and raw) with C-level calls and numpy; the references here are
the plain one-keyword-at-a-time readings of the same messages. Keywords are drawn to hit every
fallback: non-ASCII, U+001F inside an `item_list` or OIP keyword, NUL bytes, empty keywords and
elements of 256 bytes or more (which the raw tensor's fast path hands to the walk).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.service.errors import InvalidInput
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.serving.oip import (
    OpenInferenceServicer,
    _split_raw,
    bytes_tensor_keywords,
    typed_bytes_keywords,
)
from topicproj.service.serving.validation import validate
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb

SETTINGS = Settings(metrics_port=None)

# Short ASCII words most of the time, as traffic is; the rest reach every fallback.
keyword = st.one_of(
    st.sampled_from(["alien", "dystopia", "space", "time travel", "héros", "東京", "ß"]),
    st.text(min_size=0, max_size=12),  # any code point: U+001F, NUL, non-ASCII
    st.text(alphabet="ab\x1f\x00é", min_size=0, max_size=4),
    st.text(alphabet="é", min_size=128, max_size=200),  # 256 bytes or more, under the limit
)
items_strategy = st.lists(st.lists(keyword, min_size=0, max_size=6), min_size=0, max_size=8)
weights_strategy = st.floats(0.0, 10.0, width=32)


def raw_tensor(words: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(w.encode())) + w.encode() for w in words)


def reference_raw(raw: bytes) -> list[str]:
    """The raw tensor read element by element, as the protocol defines it."""
    out, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack_from("<I", raw, at)
        out.append(raw[at + 4 : at + 4 + n].decode("utf-8"))
        at += 4 + n
    return out


@settings(max_examples=100, deadline=None)
@given(st.lists(keyword, max_size=120))
def test_raw_bytes_tensor_decodes_as_element_by_element(words: list[str]) -> None:
    raw = raw_tensor(words)
    assert bytes_tensor_keywords(raw, "f", len(words)) == reference_raw(raw) == words


@settings(max_examples=100, deadline=None)
@given(st.lists(keyword, max_size=40))
def test_typed_bytes_tensor_decodes_as_element_by_element(words: list[str]) -> None:
    elements = [w.encode() for w in words]
    assert typed_bytes_keywords(elements, "f") == [e.decode() for e in elements] == words


def test_fast_path_takes_plain_keywords_and_leaves_the_rest_to_the_walk() -> None:
    # Which path ran matters for speed only, but a fast path that never ran proves nothing.
    plain = ["alien", "héros", "東京"] * 40
    assert _split_raw(raw_tensor(plain)) is not None
    assert bytes_tensor_keywords(raw_tensor(plain), "f", len(plain)) == plain
    assert _split_raw(raw_tensor(["alien"])) is None  # too short to be worth numpy
    for bad in (["a", ""], ["a\x1fb"], ["nul\x00\x00\x00x"], ["é" * 130]):
        words = plain + bad
        raw = raw_tensor(words)
        assert _split_raw(raw) is None
        assert bytes_tensor_keywords(raw, "f", len(words)) == words


@pytest.mark.parametrize(
    "raw, message",
    [
        (raw_tensor(["a", "b", "c"]), "3 keywords for shape [2]"),
        (raw_tensor(["a"]) + b"\x05\x00", "cut short"),
        (raw_tensor(["a"]) + b"\x09\x00\x00\x00ab", "runs past"),
        (b"\x02\x00\x00\x00\xc3\x28", "not UTF-8"),  # an invalid two-byte sequence
    ],
)
def test_bad_raw_tensors_are_refused_alike(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[")):
        bytes_tensor_keywords(raw, "f", 2 if "shape" in message else 1)


def test_invalid_utf8_in_a_typed_tensor_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not UTF-8"):
        typed_bytes_keywords([b"ok", b"\xff"], "f")


def infer_request(items: list[list[str]], raw: bool, weights: list[float] | None):  # type: ignore[no-untyped-def]
    flat = [k for item in items for k in item]
    counts = [len(item) for item in items]
    tensor = oip.ModelInferRequest.InferInputTensor
    request = oip.ModelInferRequest(
        model_name="topicproj",
        inputs=[
            tensor(name="keywords", datatype="BYTES", shape=[len(flat)]),
            tensor(name="keyword_counts", datatype="INT64", shape=[len(counts)]),
        ],
    )
    if weights is not None:
        request.inputs.add(name="weights", datatype="FP32", shape=[len(flat)])
    if raw:
        request.raw_input_contents.append(raw_tensor(flat))
        request.raw_input_contents.append(np.array(counts, "<i8").tobytes())
        if weights is not None:
            request.raw_input_contents.append(np.array(weights, "<f4").tobytes())
    else:
        request.inputs[0].contents.bytes_contents.extend(k.encode() for k in flat)
        request.inputs[1].contents.int64_contents.extend(counts)
        if weights is not None:
            request.inputs[2].contents.fp32_contents.extend(weights)
    return request


@settings(max_examples=60, deadline=None)
@given(items_strategy, st.booleans(), st.data())
def test_every_wire_form_decodes_to_the_same_bags(
    items: list[list[str]], weighted: bool, data: st.DataObject
) -> None:
    flat = [k for item in items for k in item]
    counts = [len(item) for item in items]
    weights = data.draw(st.lists(weights_strategy, min_size=len(flat), max_size=len(flat)))
    given_weights = weights if weighted else None
    expected_weights = np.array(weights, np.float32) if weighted and flat else None

    listed = pb.ProjectRequest()
    listed.item_list.SetInParent()
    at = 0
    for item in items:
        ws = weights[at : at + len(item)] if weighted else []
        listed.item_list.items.add(keywords=item, weights=ws)
        at += len(item)
    forms = {"item_list": validate(listed, SETTINGS)}
    if not any("\x1f" in k for k in flat):  # the packed form cannot carry U+001F
        packed = pb.ProjectRequest()
        packed.packed.keywords = "".join(k + "\x1f" for k in flat)
        packed.packed.keyword_counts.extend(counts)
        if weighted:
            packed.packed.weights.extend(weights)
        forms["packed"] = validate(packed, SETTINGS)
    servicer = OpenInferenceServicer(None, None, SETTINGS, ServiceMetrics(), lambda: True)  # type: ignore[arg-type]
    for raw in (False, True):
        forms[f"oip raw={raw}"] = servicer._bags(infer_request(items, raw, given_weights))
    for name, bags in forms.items():
        assert bags.keywords == flat, name
        assert bags.counts.tolist() == counts, name
        if expected_weights is None:
            assert bags.weights is None or np.array_equal(bags.weights, np.ones(len(flat))), name
        else:
            assert bags.weights is not None and np.array_equal(bags.weights, expected_weights), name


def test_item_list_with_weights_on_some_items_only() -> None:
    request = pb.ProjectRequest()
    request.item_list.items.add(keywords=["a", "b"], weights=[2.0, 3.0])
    request.item_list.items.add(keywords=["c\x1fd", "é"])  # no weights: each weighs 1
    request.item_list.items.add(keywords=["e"], weights=[0.5])
    bags = validate(request, SETTINGS)
    assert bags.keywords == ["a", "b", "c\x1fd", "é", "e"]
    assert bags.weights is not None
    assert bags.weights.tolist() == [2.0, 3.0, 1.0, 1.0, 0.5]


def test_item_list_with_a_wrong_number_of_weights_names_the_item() -> None:
    request = pb.ProjectRequest()
    request.item_list.items.add(keywords=["a"], weights=[1.0])
    request.item_list.items.add(keywords=["b", "c"], weights=[1.0])
    with pytest.raises(InvalidInput) as e:
        validate(request, SETTINGS)
    assert "1 weights for 2 keywords" in str(e.value)
    assert "item_list.items[1].weights" in repr(e.value.__dict__)
