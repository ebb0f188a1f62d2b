"""The Open Inference Protocol (KServe v2 / Triton) on the server's port, beside the domain API.

The model is called `topicproj`, its version the served version. It takes the same bags of
keywords as `Project`, as tensors, and goes through the same batcher, model holder, limits,
metrics and auth:

    inputs   keywords        BYTES         [n_keywords]   every keyword of every item, in order
             keyword_counts  INT32, INT64  [n_items]      keywords per item, adding up
             weights         FP32          [n_keywords]   optional, one per keyword
    outputs  topics          FP32          [n_items, n_topics]

Tensors come either typed (`contents`) or raw (`raw_input_contents`: little-endian, and BYTES
elements each prefixed by a 4-byte little-endian length); the answer comes in the form the
request used. Bad tensors get INVALID_ARGUMENT with a BadRequest naming `inputs[i]`.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

import grpc
import numpy as np

from topicproj.models.core.topic_model import TopicModel
from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.oip.v2 import grpc_predict_v2_pb2_grpc as oip_grpc
from topicproj.service.errors import InvalidInput, ModelVersionNotFound, NotFound
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.settings import Settings
from topicproj.service.version import package_version

from .batching import Lanes
from .holder import ModelHolder, Projected
from .limits import KeywordBudget, check_request_size, off_loop_keywords
from .validation import Bags, check_bags

MODEL_NAME = "topicproj"
KEYWORDS, COUNTS, WEIGHTS, TOPICS = "keywords", "keyword_counts", "weights", "topics"
_COUNT_TYPES = {"INT32": ("<i4", "int_contents"), "INT64": ("<i8", "int64_contents")}


def decode_bytes_tensor(raw: bytes, field: str, expected: int | None = None) -> list[bytes]:
    """The elements of a raw BYTES tensor: each a 4-byte little-endian length, then its bytes.

    One Python step per element: the reference `bytes_tensor_keywords` falls back to (and is
    tested against). With `expected` (the declared shape), decoding stops one element past it:
    a tensor that holds more than its shape says is refused without decoding the rest."""
    out: list[bytes] = []
    at, end = 0, len(raw)
    while at < end:
        if expected is not None and len(out) > expected:
            break
        if at + 4 > end:
            raise InvalidInput("a BYTES element's 4-byte length is cut short", field)
        (n,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + n > end:
            raise InvalidInput(f"a BYTES element of {n} bytes runs past the tensor's end", field)
        out.append(raw[at : at + n])
        at += n
    return out


# Raw BYTES tensors shorter than this are walked element by element: below it (a few dozen
# keywords) numpy's fixed cost per call exceeds the walk's (`python -m benchmarks.decoding`).
NUMPY_BYTES = 512
_UNIT = 0x1F  # U+001F: a byte no UTF-8 sequence uses but itself, and no keyword should hold


def _split_raw(raw: bytes) -> bytes | None:
    """A raw BYTES tensor's elements as one buffer, each preceded by U+001F, found with numpy;
    None when this cannot tell them apart (an element of 256 bytes or more, an empty element,
    NUL or U+001F bytes inside one) and the caller walks the tensor element by element.

    An element under 256 bytes has a length prefix whose three high bytes are zero. Every such
    position is a candidate; when the candidates form the chain of elements exactly (the first
    at 0, each one's end the next one's start, the last one's end the tensor's), they are the
    elements: the chain from byte 0 is unique, so no false candidate can hide in a valid chain.
    """
    size = len(raw)
    if size < NUMPY_BYTES:  # a few elements: the walk costs less than numpy's calls
        return None
    b = np.frombuffer(raw, np.uint8)
    starts = np.flatnonzero((b[1 : size - 2] == 0) & (b[2 : size - 1] == 0) & (b[3:size] == 0))
    if not len(starts) or starts[0] != 0:
        return None
    ends = starts + 4 + b[starts]
    if ends[-1] != size or not np.array_equal(ends[:-1], starts[1:]):
        return None
    if (b[starts] == 0).any():  # an empty element; its prefix can hide another candidate
        return None
    out = b.copy()
    out[starts + 3] = _UNIT  # each prefix becomes one separator
    keep = np.ones(size, dtype=bool)
    keep[starts] = keep[starts + 1] = keep[starts + 2] = False
    joined = out[keep]
    if np.count_nonzero(joined == _UNIT) != len(starts):  # an element holds U+001F itself
        return None
    return joined.tobytes()


def _decode_joined(joined: bytes, n: int, field: str) -> list[str]:
    """`n` UTF-8 elements, each preceded by U+001F, decoded and split in two C calls."""
    try:
        text = joined.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"a keyword is not UTF-8 ({e.reason})", field) from None
    return text[1:].split("\x1f") if n else []


def _decode_each(elements: list[bytes], field: str) -> list[str]:
    try:
        return list(map(bytes.decode, elements))
    except UnicodeDecodeError as e:
        raise InvalidInput(f"a keyword is not UTF-8 ({e.reason})", field) from None


def bytes_tensor_keywords(raw: bytes, field: str, expected: int) -> list[str]:
    """The keywords of a raw BYTES tensor of declared shape [expected], decoded with numpy and
    two C calls when it can (`_split_raw`), else element by element, with the same result and
    the same errors either way."""
    if (joined := _split_raw(raw)) is not None:
        n = joined.count(_UNIT)
        if n != expected:
            raise InvalidInput(f"{min(n, expected + 1)} keywords for shape [{expected}]", field)
        return _decode_joined(joined, n, field)
    elements = decode_bytes_tensor(raw, field, expected)
    if len(elements) != expected:
        raise InvalidInput(f"{len(elements)} keywords for shape [{expected}]", field)
    return _decode_each(elements, field)


def typed_bytes_keywords(elements: list[bytes], field: str) -> list[str]:
    """The keywords of a typed BYTES tensor (`bytes_contents`): joined, decoded and split in
    C calls when no element holds U+001F, else decoded one by one; the same result either way."""
    joined = b"\x1f" + b"\x1f".join(elements)
    if joined.count(_UNIT) == len(elements):
        return _decode_joined(joined, len(elements), field)
    return _decode_each(elements, field)


class OpenInferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self,
        holder: ModelHolder,
        batcher: Lanes[Bags, Projected],
        settings: Settings,
        metrics: ServiceMetrics,
        ready: Callable[[], bool],
        budget: KeywordBudget | None = None,
    ) -> None:
        self.holder = holder
        self.budget = budget or KeywordBudget(
            settings.max_queued_keywords, metrics, settings.retry_delay_ms / 1000
        )
        self.batcher = batcher
        self.settings = settings
        self.metrics = metrics
        self.ready = ready  # the server's health: SERVING or not

    async def ServerLive(
        self, request: oip.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerLiveResponse:
        return oip.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: oip.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerReadyResponse:
        return oip.ServerReadyResponse(ready=self.ready())

    async def ModelReady(
        self, request: oip.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelReadyResponse:
        self._check_name(request.name)
        served = request.version in ("", self.holder.model.version_)
        return oip.ModelReadyResponse(ready=served and self.ready())

    async def ServerMetadata(
        self, request: oip.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip.ServerMetadataResponse:
        return oip.ServerMetadataResponse(name=MODEL_NAME, version=package_version())

    async def ModelMetadata(
        self, request: oip.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelMetadataResponse:
        model = self._model(request.name, request.version)
        tensor = oip.ModelMetadataResponse.TensorMetadata
        return oip.ModelMetadataResponse(
            name=MODEL_NAME,
            versions=[model.version_],
            platform="pytorch",
            inputs=[
                tensor(name=KEYWORDS, datatype="BYTES", shape=[-1]),
                tensor(name=COUNTS, datatype="INT32", shape=[-1]),
                tensor(name=WEIGHTS, datatype="FP32", shape=[-1]),
            ],
            outputs=[tensor(name=TOPICS, datatype="FP32", shape=[-1, model.n_topics])],
        )

    async def ModelInfer(
        self, request: oip.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> oip.ModelInferResponse:
        model = self._model(request.model_name, request.model_version)
        for i, out in enumerate(request.outputs):
            if out.name != TOPICS:
                raise InvalidInput(
                    f"unknown output {out.name!r}; the model has {TOPICS!r}", f"outputs[{i}].name"
                )
        keywords = self._declared(request)  # shapes only, before any decoding
        with self.budget.hold(keywords):
            return await self._admitted(request, context, model, keywords)

    async def _admitted(
        self,
        request: oip.ModelInferRequest,
        context: grpc.aio.ServicerContext,
        model: TopicModel,
        keywords: int,
    ) -> oip.ModelInferResponse:
        # A large request is decoded in a thread: health stays responsive.
        if keywords > off_loop_keywords(self.settings):
            bags = await asyncio.to_thread(self._bags, request)
        else:
            bags = self._bags(request)
        self.metrics.items.labels("ModelInfer").inc(len(bags))
        n_topics = model.n_topics
        if len(bags):
            remaining = context.time_remaining()
            deadline = time.monotonic() + remaining if remaining is not None else None
            projected = await self.batcher.submit(bags, len(bags), deadline, keywords)
            if request.model_version and request.model_version != projected.version:
                raise ModelVersionNotFound(request.model_version, projected.version)
            Y, served = projected.Y, projected.version
        else:
            Y, served = np.zeros((0, n_topics), np.float32), model.version_
        response = oip.ModelInferResponse(
            model_name=MODEL_NAME, model_version=served, id=request.id
        )
        output = response.outputs.add(name=TOPICS, datatype="FP32", shape=list(Y.shape))
        if request.raw_input_contents:
            response.raw_output_contents.append(np.ascontiguousarray(Y, "<f4").tobytes())
        else:
            output.contents.fp32_contents.extend(Y.reshape(-1).tolist())
        return response

    # -- helpers ---------------------------------------------------------------------------

    def _check_name(self, name: str) -> None:
        if name != MODEL_NAME:
            raise NotFound(f"unknown model {name!r}; this server serves {MODEL_NAME!r}")

    def _model(self, name: str, wanted: str) -> TopicModel:
        self._check_name(name)
        model = self.holder.model
        if wanted and wanted != model.version_:
            raise ModelVersionNotFound(wanted, model.version_)
        return model

    def _declared(self, request: oip.ModelInferRequest) -> int:
        """The keywords the request's shapes declare, checked against the per-request limits.

        Decoding later holds each tensor to its shape, so a shape that lies costs no more."""
        shapes = {t.name: (i, t.shape[0]) for i, t in enumerate(request.inputs) if t.shape}
        keywords = shapes.get(KEYWORDS, (0, 0))[1]
        i, items = shapes.get(COUNTS, (0, 0))
        check_request_size(max(items, 0), max(keywords, 0), self.settings, f"inputs[{i}].shape")
        return max(keywords, 0)

    def _bags(self, request: oip.ModelInferRequest) -> Bags:
        """The request's tensors as keyword bags, every shape, type and count checked."""
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidInput(
                f"{len(raw)} raw contents for {len(request.inputs)} inputs", "raw_input_contents"
            )
        positions: dict[str, int] = {}
        for i, tensor in enumerate(request.inputs):
            if tensor.name not in (KEYWORDS, COUNTS, WEIGHTS):
                raise InvalidInput(
                    f"unknown input {tensor.name!r}; the model takes {KEYWORDS!r}, {COUNTS!r} "
                    f"and optionally {WEIGHTS!r}",
                    f"inputs[{i}].name",
                )
            if tensor.name in positions:
                raise InvalidInput(f"input {tensor.name!r} is given twice", f"inputs[{i}].name")
            if raw and tensor.HasField("contents"):
                raise InvalidInput(
                    "give contents or raw_input_contents, not both", f"inputs[{i}].contents"
                )
            if len(tensor.shape) != 1 or tensor.shape[0] < 0:
                raise InvalidInput(
                    f"shape {list(tensor.shape)}: {tensor.name!r} is one-dimensional, [n]",
                    f"inputs[{i}].shape",
                )
            positions[tensor.name] = i
        for name in (KEYWORDS, COUNTS):
            if name not in positions:
                raise InvalidInput(f"input {name!r} is missing", "inputs")
        keywords = self._keywords(request, positions[KEYWORDS], raw)
        counts = self._counts(request, positions[COUNTS], raw)
        if int(counts.sum()) != len(keywords):
            raise InvalidInput(
                f"keyword_counts add up to {int(counts.sum())}, but there are {len(keywords)} "
                "keywords",
                f"inputs[{positions[COUNTS]}]",
            )
        weights = None
        if WEIGHTS in positions:
            weights = self._weights(request, positions[WEIGHTS], raw, len(keywords))
        fields = {
            "count": f"inputs[{positions[COUNTS]}]",
            "keywords": f"inputs[{positions[KEYWORDS]}]",
            "weights": f"inputs[{positions.get(WEIGHTS, -1)}]",
        }
        check_bags(
            keywords,
            counts,
            weights,
            self.settings,
            lambda i, name: fields[name],
            f"inputs[{positions[COUNTS]}]",
        )
        return Bags(keywords, counts, weights, request.model_version)

    def _tensor(self, request: oip.ModelInferRequest, i: int, datatypes: tuple[str, ...]) -> str:
        tensor = request.inputs[i]
        if tensor.datatype not in datatypes:
            raise InvalidInput(
                f"{tensor.name!r} must be {' or '.join(datatypes)}, not {tensor.datatype!r}",
                f"inputs[{i}].datatype",
            )
        return tensor.datatype

    def _keywords(self, request: oip.ModelInferRequest, i: int, raw: list[bytes]) -> list[str]:
        self._tensor(request, i, ("BYTES",))
        field = f"raw_input_contents[{i}]" if raw else f"inputs[{i}].contents"
        expected = request.inputs[i].shape[0]
        if raw:
            return bytes_tensor_keywords(raw[i], field, expected)
        elements = list(request.inputs[i].contents.bytes_contents)
        if len(elements) != expected:
            raise InvalidInput(f"{len(elements)} keywords for shape [{expected}]", field)
        return typed_bytes_keywords(elements, field)

    def _counts(self, request: oip.ModelInferRequest, i: int, raw: list[bytes]) -> np.ndarray:
        dtype, typed = _COUNT_TYPES[self._tensor(request, i, tuple(_COUNT_TYPES))]
        expected = request.inputs[i].shape[0]
        if raw:
            field = f"raw_input_contents[{i}]"
            if len(raw[i]) != expected * np.dtype(dtype).itemsize:
                raise InvalidInput(f"{len(raw[i])} bytes for shape [{expected}] of {dtype}", field)
            counts = np.frombuffer(raw[i], dtype=dtype).astype(np.int64)
        else:
            field = f"inputs[{i}].contents"
            counts = np.array(getattr(request.inputs[i].contents, typed), dtype=np.int64)
            if len(counts) != expected:
                raise InvalidInput(f"{len(counts)} counts for shape [{expected}]", field)
        if (counts < 0).any():
            raise InvalidInput("keyword counts must not be negative", field)
        return counts

    def _weights(
        self, request: oip.ModelInferRequest, i: int, raw: list[bytes], n_keywords: int
    ) -> np.ndarray:
        self._tensor(request, i, ("FP32",))
        if raw:
            field = f"raw_input_contents[{i}]"
            if len(raw[i]) % 4:
                raise InvalidInput(f"{len(raw[i])} bytes is not a whole number of FP32", field)
            weights = np.frombuffer(raw[i], dtype="<f4").astype(np.float32)
        else:
            field = f"inputs[{i}].contents"
            weights = np.array(request.inputs[i].contents.fp32_contents, dtype=np.float32)
        if len(weights) != n_keywords or request.inputs[i].shape[0] != n_keywords:
            raise InvalidInput(f"{len(weights)} weights for {n_keywords} keywords", field)
        return weights
