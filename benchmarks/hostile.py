"""Hostile load: is the server still responsive while clients send the largest allowed requests?

A real `topicproj serve` process, with the default limits. First the prober alone (idle): a
`liveness` health check and a one-keyword `Project`, alternately, for `--idle-seconds`. Then
the same prober while `--clients` processes send the largest request the limits allow, back to
back, for `--seconds`: `max_keywords_per_request` keywords, packed `Project`, `ItemList`
`Project` and raw-BYTES `ModelInfer` in turn across the clients. Reported: the prober's p50/p99
in both phases, the heavy requests' status codes, and the server's peak RSS (VmHWM).

    python -m benchmarks hostile --out benchmarks/RESULTS.md

Targets: liveness p99 under 100 ms, the small request's p99 under 5x its idle p99, peak RSS
under 2 GiB, no INTERNAL or UNKNOWN.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .machine import command_line, cpu_name, emit

REPO = Path(__file__).resolve().parents[1]
SEP = "\x1f"
FORMS = ("packed", "item_list", "oip_raw")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def heavy_request(form: str, vocabulary: list[str], keywords: int, per_item: int) -> bytes:
    """The serialized largest request of `form`: known and unknown keywords, 4,096 per item."""
    from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
    from topicproj.v1 import topicproj_pb2 as pb

    rng = np.random.default_rng(0)
    known = rng.choice(vocabulary, keywords // 2)
    unknown = [f"unknown-keyword-{i}" for i in range(keywords - len(known))]
    words = [*known, *unknown]
    items = [words[i : i + per_item] for i in range(0, keywords, per_item)]
    counts = [len(item) for item in items]
    if form == "packed":
        text = "".join(w + SEP for w in words)
        request = pb.ProjectRequest(packed=pb.PackedItems(keywords=text, keyword_counts=counts))
    elif form == "item_list":
        request = pb.ProjectRequest(
            item_list=pb.ItemList(items=[pb.Item(keywords=item) for item in items])
        )
    else:
        tensor = oip.ModelInferRequest.InferInputTensor
        request = oip.ModelInferRequest(
            model_name="topicproj",
            inputs=[
                tensor(name="keywords", datatype="BYTES", shape=[len(words)]),
                tensor(name="keyword_counts", datatype="INT32", shape=[len(counts)]),
            ],
        )
        encoded = [w.encode() for w in words]
        request.raw_input_contents.append(b"".join(struct.pack("<I", len(e)) + e for e in encoded))
        request.raw_input_contents.append(np.array(counts, "<i4").tobytes())
    return request.SerializeToString()


def _method(form: str) -> str:
    if form == "oip_raw":
        return "/inference.GRPCInferenceService/ModelInfer"
    return "/topicproj.v1.TopicProjectionService/Project"


def heavy_client(address: str, form: str, payload: bytes, until: float, out: object) -> None:
    """Send `payload` back to back until `until`; put the status codes seen on `out`."""
    import grpc

    codes: collections.Counter[str] = collections.Counter()
    options = [("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(address, options=options) as channel:
        call = channel.unary_unary(_method(form))  # bytes in, bytes out: no client-side work
        while time.time() < until:
            try:
                call(payload, timeout=60)
                codes["OK"] += 1
            except grpc.RpcError as e:
                codes[e.code().name] += 1
    out.put((form, dict(codes)))  # type: ignore[attr-defined]


def probe(address: str, seconds: float, word: str) -> tuple[list[float], list[float], int]:
    """Liveness and one-keyword Project latencies (ms), alternately; and the failures."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from topicproj.v1 import topicproj_pb2 as pb
    from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

    health_ms: list[float] = []
    small_ms: list[float] = []
    failures = 0
    small = pb.ProjectRequest(item_list=pb.ItemList(items=[pb.Item(keywords=[word])]))
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        api = pb_grpc.TopicProjectionServiceStub(channel)
        live = health_pb2.HealthCheckRequest(service="liveness")
        end = time.monotonic() + seconds
        calls = ((health.Check, live, health_ms), (api.Project, small, small_ms))
        while time.monotonic() < end:
            for call, request, sink in calls:
                start = time.perf_counter()
                try:
                    call(request, timeout=30)
                    sink.append((time.perf_counter() - start) * 1000)
                except grpc.RpcError:
                    failures += 1
            time.sleep(0.01)
    return health_ms, small_ms, failures


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train_model(directory: Path) -> list[str]:
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.synthetic import make_synthetic_catalog

    catalog = make_synthetic_catalog(n_items=2000, n_topics=20, seed=0).catalog
    model = TopicModel(20, min_df=2, max_epochs=5, device="cpu", verbose=False)
    model.fit(catalog.keywords).save(directory)
    return list(model.vocabulary_.keywords)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m benchmarks hostile", description=__doc__)
    p.add_argument("--clients", type=int, default=3, help="processes sending the largest requests")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the loaded phase")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="length of the idle phase")
    p.add_argument("--out", type=Path, help="append the results (Markdown) to this file")
    args = p.parse_args(argv)

    from topicproj.service.settings import Settings

    limits = Settings()
    per_item = limits.max_keywords_per_item
    keywords = limits.max_keywords_per_request
    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    vocabulary = train_model(tmp / "model")
    payloads = {f: heavy_request(f, vocabulary, keywords, per_item) for f in FORMS}
    port = free_port()
    address = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "topicproj.service.cli", "serve", "--model", str(tmp / "model"),
         "--port", str(port), "--no-metrics"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            _, ok, failed = probe(address, 0.05, vocabulary[0])
            if ok and not failed:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        idle_health, idle_small, idle_failed = probe(address, args.idle_seconds, vocabulary[0])
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        until = time.time() + args.seconds
        clients = [
            ctx.Process(
                target=heavy_client,
                args=(address, FORMS[i % len(FORMS)], payloads[FORMS[i % len(FORMS)]], until, out),
            )
            for i in range(args.clients)
        ]
        for c in clients:
            c.start()
        time.sleep(1.0)  # the clients' first requests are in flight
        load_health, load_small, load_failed = probe(address, args.seconds - 1.5, vocabulary[0])
        codes: collections.Counter[str] = collections.Counter()
        by_form: dict[str, dict[str, int]] = {}
        for _ in clients:
            form, seen = out.get(timeout=120)
            by_form[form] = seen
            codes.update(seen)
        for c in clients:
            c.join(30)
        peak = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(30)

    sizes = ", ".join(f"{f} {len(b) / 2**20:.1f} MiB" for f, b in payloads.items())
    h99, s99, i99 = pct(load_health, 99), pct(load_small, 99), pct(idle_small, 99)
    bad = codes.get("INTERNAL", 0) + codes.get("UNKNOWN", 0)
    lines = [
        "",
        "## Hostile load: the largest allowed requests against health and a small request",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), shared with other agents' jobs (load "
        f"average {os.getloadavg()[0]:.0f} at the end); figures are noisy.",
        "",
        "```sh",
        command_line("benchmarks.hostile", argv),
        "```",
        "",
        f"Server: `topicproj serve` with the default limits ({keywords:,} keywords per request, "
        f"{limits.max_queued_keywords:,} queued, {limits.max_receive_bytes // 2**20} MiB "
        f"received). Heavy requests: {keywords:,} keywords in items of {per_item:,} "
        f"({sizes}), {args.clients} clients back to back for {args.seconds:.0f} s.",
        "",
        "| phase | liveness p50 ms | liveness p99 ms | 1-keyword Project p50 ms | p99 ms | probes | probe failures |",  # noqa: E501
        "|---|---|---|---|---|---|---|",
        f"| idle | {pct(idle_health, 50):.1f} | {pct(idle_health, 99):.1f} | "
        f"{pct(idle_small, 50):.1f} | {i99:.1f} | {len(idle_health)} | {idle_failed} |",
        f"| {args.clients} heavy clients | {pct(load_health, 50):.1f} | {h99:.1f} | "
        f"{pct(load_small, 50):.1f} | {s99:.1f} | {len(load_health)} | {load_failed} |",
        "",
        "Heavy requests by status: "
        + "; ".join(f"{f}: {dict(sorted(c.items()))}" for f, c in sorted(by_form.items()))
        + f". Server peak RSS (VmHWM): {peak:,.0f} MiB.",
        "",
        "| target | measured | met? |",
        "|---|---|---|",
        f"| liveness p99 < 100 ms | {h99:.1f} ms | {'yes' if h99 < 100 else '**no**'} |",
        f"| 1-keyword p99 < 5 x idle p99 ({5 * i99:.1f} ms) | {s99:.1f} ms ({s99 / i99:.1f} x) "
        f"| {'yes' if s99 < 5 * i99 else '**no**'} |",
        f"| peak RSS < 2 GiB | {peak:,.0f} MiB | {'yes' if peak < 2048 else '**no**'} |",
        f"| 0 INTERNAL / UNKNOWN | {bad} | {'yes' if bad == 0 else '**no**'} |",
        "",
    ]
    emit("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
