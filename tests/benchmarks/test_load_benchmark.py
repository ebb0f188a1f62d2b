"""The load benchmark end to end, briefly, so that it cannot silently break."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_load_benchmark_runs_every_server_kind_and_writes_its_tables(model_dir, tmp_path):
    out = tmp_path / "results.md"
    profile = shutil.which("py-spy") or Path(sys.executable).with_name("py-spy").exists()
    command = [
        *(sys.executable, "-m", "benchmarks", "load", "--model", str(model_dir)),
        *("--scenarios", "4x3", "--servers", "batched,noop,workers2,oip,plain"),
        *("--client-processes", "2", "--clients-per-channel", "1"),
        *("--duration", "1", "--warmup", "0.5", "--out", str(out)),
        *(("--profile",) if profile else ()),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("```sh\npython -m benchmarks load --model")
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| 4 × 3")}
    for name in (
        "batched (256 items, 2 ms)",
        "no-op grpc.aio (ceiling)",
        "batched, 2 workers",
        "*batched / no-op*",
        "*batched, 2 workers / 1 worker*",
        "batched, Open Inference Protocol (ModelInfer, raw tensors)",
        "*batched / Open Inference Protocol*",
        "plain grpc.aio, no batching",
        "*batched / plain grpc.aio*",
        "in-process (map + project)",
    ):
        assert name in rows, f"no row {name!r} in\n{text}"
    for name in (
        "batched (256 items, 2 ms)",
        "no-op grpc.aio (ceiling)",
        "batched, 2 workers",
        "batched, Open Inference Protocol (ModelInfer, raw tensors)",
        "plain grpc.aio, no batching",
    ):
        cells = rows[name].split(" | ")
        assert float(cells[2].replace(",", "")) > 0  # requests/s
        assert cells[7] == "0"  # errors
    if profile:
        assert "Where the GIL time of the server goes" in text
        shares = [
            float(line.rsplit("|", 2)[1].strip().rstrip("%"))
            for line in text.splitlines()
            if line.startswith("| ") and line.rstrip().endswith("% |")
        ]
        assert shares and sum(shares) == pytest.approx(100.0, abs=1.0)
