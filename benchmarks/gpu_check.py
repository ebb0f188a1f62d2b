"""GPU check of the models layer: correctness against float64 on the CPU, kernel speed, training.

Run it on a machine with CUDA (CI never has one):

    python -m benchmarks.gpu_check [--out FILE]

1. The CUDA projection equals the float64 CPU reference (relative error below 1e-5 in float32).
2. The projection kernel, timed with CUDA events at batch sizes 1 to 65,536 for 256 topics over
   20,000 keywords, against the memory-bandwidth bound it computes from the bytes it must move.
3. Training on CUDA end to end (synthetic catalog), and the same model projected on the CPU.
4. The gRPC server in process on CUDA: concurrent clients through the batcher, checked against
   the CPU projection.
5. What batching gains on the device: 256 concurrent single-item requests through the batcher
   (256 items, 2 ms) against the same with batching off, in requests/s.
Prints a Markdown section; with --out, also appends it to that file. `--device cpu` runs the
parts that do not need CUDA (4 and 5), to try the script on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from topicproj.models.core.projector import Projector, ProjectorConfig
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.synthetic import make_synthetic_catalog

KEYWORDS, TOPICS, PER_ITEM = 20_000, 256, 8


def random_projector(device: torch.device, dtype: torch.dtype = torch.float32) -> Projector:
    g = torch.Generator().manual_seed(0)
    p = Projector(ProjectorConfig(KEYWORDS, TOPICS, "overlap"))
    with torch.no_grad():
        W = torch.rand(KEYWORDS, TOPICS, generator=g) * (
            torch.rand(KEYWORDS, TOPICS, generator=g) < 0.05
        )
        p.keyword_topics.copy_(W)
        p.bias.copy_(torch.randn(TOPICS, generator=g) * 0.1)
        p.activation.threshold.copy_(torch.rand(TOPICS, generator=g) * 0.01)
    return p.to(device=device, dtype=dtype).eval()


def random_batch(n: int, device: torch.device, seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 2 * PER_ITEM, (n,), generator=g)
    indices = torch.randint(0, KEYWORDS, (int(lengths.sum()),), generator=g)
    offsets = torch.cumsum(lengths, 0) - lengths
    weights = torch.ones(len(indices))
    return indices.to(device), offsets.to(device), weights.to(device)


@torch.no_grad()
def check_correctness(device: torch.device) -> str:
    reference = random_projector(torch.device("cpu"), torch.float64)
    gpu = random_projector(device)
    idx, off, w = random_batch(4096, torch.device("cpu"))
    expected = reference(idx, off, w.double())
    got = gpu(idx.to(device), off.to(device), w.to(device)).double().cpu()
    rel = float((got - expected).norm() / expected.norm())
    worst = float(((got - expected).abs() / expected.abs().clamp_min(1e-3)).max())
    status = "PASS" if rel < 1e-5 else "FAIL"
    return (
        f"- CUDA float32 vs CPU float64 projection, 4,096 items: relative error {rel:.2e} "
        f"(max elementwise {worst:.2e}): **{status}**"
    )


@torch.no_grad()
def check_no_hidden_sync(device: torch.device) -> str:
    """The projection must not wait for the device anywhere but where the result is read."""
    p = random_projector(device)
    idx, off, w = random_batch(1024, device)
    p(idx, off, w)  # first-call allocations may synchronise; they are not the steady state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        p(idx, off, w)
        status, detail = "PASS", "none"
    except RuntimeError as e:
        status, detail = "FAIL", str(e).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return (
        f"- synchronisations inside one forward pass (set_sync_debug_mode): {detail}: **{status}**"
    )


@torch.no_grad()
def time_kernel(device: torch.device) -> list[str]:
    p = random_projector(device)
    props = torch.cuda.get_device_properties(device)
    # HBM bandwidth is not exposed by torch; measure it with a large device-to-device copy.
    src = torch.empty(1 << 28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        dst.copy_(src)
    end.record()
    torch.cuda.synchronize()
    bandwidth = 2 * src.numel() * 4 * 10 / (start.elapsed_time(end) / 1e3)  # bytes/s
    del src, dst
    rows = [
        f"- device: {props.name}, measured copy bandwidth {bandwidth / 1e12:.2f} TB/s",
        "",
        "| batch | ms per batch | items/s | bandwidth bound items/s | share of bound |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in [1, 16, 256, 1024, 4096, 16384, 65536]:
        idx, off, w = random_batch(n, device, seed=n)
        for _ in range(3):
            p(idx, off, w)
        reps = max(5, min(200, 200_000 // n))
        start.record()
        for _ in range(reps):
            p(idx, off, w)
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / reps
        # Bytes that must move: each keyword's topic row read once, plus writing the output.
        nnz = len(idx)
        bytes_moved = (nnz * TOPICS + 2 * n * TOPICS) * 4 + nnz * 16
        bound = n / (bytes_moved / bandwidth)
        rate = n / (ms / 1e3)
        rows.append(f"| {n} | {ms:.3f} | {rate:,.0f} | {bound:,.0f} | {rate / bound:.1%} |")
    return rows


def check_training(device: torch.device) -> list[str]:
    catalog = make_synthetic_catalog().catalog
    out = []
    models = {}
    for dev in ("cpu", str(device)):
        start = time.perf_counter()
        model = TopicModel(12, min_df=2, device=dev, random_state=0).fit(catalog.keywords)
        seconds = time.perf_counter() - start
        models[dev] = model
        out.append(
            f"- training on {dev}: {seconds:.1f} s, {model.n_epochs_} epochs, best "
            f"validation loss {model.train_result_.best_validation_loss:.4f}"
        )
    gpu_model = models[str(device)]
    y_gpu = gpu_model.transform(catalog.keywords[:500])
    gpu_model.projector_.to("cpu")
    y_cpu = gpu_model.transform(catalog.keywords[:500])
    rel = float(np.linalg.norm(y_gpu - y_cpu) / max(np.linalg.norm(y_cpu), 1e-12))
    out.append(
        f"- the CUDA-trained model projected on CUDA vs on the CPU: relative difference {rel:.2e}"
    )
    return out


def check_serving(device: torch.device) -> list[str]:
    import asyncio
    import tempfile

    from prometheus_client import CollectorRegistry

    from topicproj.service.client import AsyncTopicClient
    from topicproj.service.metrics import ServiceMetrics
    from topicproj.service.serving.server import ProjectionServer
    from topicproj.service.settings import Settings

    catalog = make_synthetic_catalog().catalog
    with tempfile.TemporaryDirectory() as tmp:
        TopicModel(12, min_df=2, device=str(device)).fit(catalog.keywords).save(f"{tmp}/m")
        model = TopicModel.load(f"{tmp}/m", device=str(device))
        reference = TopicModel.load(f"{tmp}/m", device="cpu")
    registry = CollectorRegistry()

    async def run() -> tuple[float, float, int]:
        server = ProjectionServer(
            model, Settings(port=0, metrics_port=None, device=str(device)), ServiceMetrics(registry)
        )
        await server.start()
        items = catalog.keywords[:2048]
        start = time.perf_counter()
        async with AsyncTopicClient(f"127.0.0.1:{server.port}") as client:
            singles = await asyncio.gather(*(client.project([it]) for it in items[:512]))
            blocks = await asyncio.gather(
                *(client.project(items[i : i + 256]) for i in range(0, len(items), 256))
            )
        seconds = time.perf_counter() - start
        await server.stop(1.0)
        got = np.concatenate([r.topics for r in singles] + [r.topics for r in blocks])
        want = np.concatenate([reference.transform(items[:512]), reference.transform(items)])
        err = float(np.abs(got - want).max())
        return err, seconds, 512 + len(items)

    err, seconds, n = asyncio.run(run())
    batches = registry.get_sample_value("topicproj_batch_items_count") or 0
    return [
        f"- gRPC server on {device}, in process: {n} items from 520 concurrent requests in "
        f"{seconds:.2f} s, {int(batches)} batches; max abs difference from the CPU projection "
        f"{err:.2e}: **{'PASS' if err < 1e-4 else 'FAIL'}**"
    ]


def check_batching_gain(device: torch.device, seconds: float = 3.0) -> list[str]:
    """Requests/s of 256 concurrent single-item requests, batcher on and off, in process."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from topicproj.service.metrics import ServiceMetrics
    from topicproj.service.serving.batching import Batcher
    from topicproj.service.serving.server import ProjectionServer
    from topicproj.service.serving.validation import Bags
    from topicproj.service.settings import Settings

    catalog = make_synthetic_catalog().catalog
    model = TopicModel(12, min_df=2, max_epochs=5, device=str(device)).fit(catalog.keywords)
    model.version_ = "check"
    items = [k for k in catalog.keywords if k][:1024]
    bags = [Bags(list(k), np.array([len(k)]), None) for k in items]

    async def rate(max_batch_items: int) -> tuple[float, float]:
        server = ProjectionServer(
            model,
            Settings(port=0, metrics_port=None, device=str(device)),
            ServiceMetrics(CollectorRegistry()),
        )
        batcher = Batcher(
            server.holder.compute,
            record=server.holder.record,
            max_batch_items=max_batch_items,
            max_wait_ms=2.0,
            max_queue_items=1 << 20,
            metrics=server.metrics,
        )
        batcher.start()
        done = 0
        stop = time.perf_counter() + seconds

        async def client(i: int) -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await batcher.submit(bags[i % len(bags)], 1)
                done += 1
                i += 256

        start = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(256)))
        elapsed = time.perf_counter() - start
        await batcher.stop()
        batches = server.metrics.registry.get_sample_value("topicproj_batch_items_count") or 1
        return done / elapsed, done / batches

    (on, per_batch), (off, _) = asyncio.run(rate(256)), asyncio.run(rate(1))
    return [
        f"- batching on {device}, in process: 256 concurrent single-item requests, "
        f"{on:,.0f} requests/s batched ({per_batch:.0f} items per batch) against {off:,.0f} "
        f"unbatched: **{on / off:.1f}×**"
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="append the Markdown section to this file")
    parser.add_argument(
        "--device", default="cuda", help="cuda (default), or cpu for a dry run of parts 4 and 5"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        lines = [f"### GPU check, dry run on the CPU (torch {torch.__version__})", ""]
        lines += check_serving(device)
        lines += check_batching_gain(device)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device here; this check needs one (or --device cpu)")
        name = torch.cuda.get_device_name(device)
        lines = [f"### GPU check ({name}, torch {torch.__version__})", ""]
        lines.append(check_correctness(device))
        lines.append(check_no_hidden_sync(device))
        lines += time_kernel(device)
        lines.append("")
        lines += check_training(device)
        lines += check_serving(device)
        lines += check_batching_gain(device)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
