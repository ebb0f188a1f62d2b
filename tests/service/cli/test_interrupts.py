"""SIGINT and SIGTERM stop `project`, `train` and `evaluate` cleanly, and a later run removes
what a killed one left: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from topicproj.models.core.tempfiles import remove_leftovers
from topicproj.models.data.synthetic import make_synthetic_catalog

from ..conftest import SYNTHETIC

REPO = Path(__file__).resolve().parents[3]
STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.fixture(scope="module")
def big_catalog(tmp_path_factory) -> Path:
    """Enough items that projecting them with explanations takes a while (seconds)."""
    items = make_synthetic_catalog(**{**SYNTHETIC, "n_items": 2000}, seed=3).catalog.keywords
    path = tmp_path_factory.mktemp("big") / "catalog.jsonl"
    lines = [json.dumps({"id": f"m{i}", "keywords": k}) for i, k in enumerate(items)]
    path.write_text("\n".join(lines * 50) + "\n", encoding="utf-8")  # 100,000 items
    return path


def head(source: Path, n: int, target: Path) -> Path:
    with open(source, encoding="utf-8") as f, open(target, "w", encoding="utf-8") as g:
        g.writelines(line for _, line in zip(range(n), f, strict=False))
    return target


def start(*argv: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "topicproj.service.cli", *map(str, argv)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode} before {what}: {proc.stderr.read()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within 120 s")
        time.sleep(0.05)


def wait_for_line(proc: subprocess.Popen[str], prefix: str) -> list[str]:
    """Read stderr until a line starts with `prefix`; the lines read."""
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:  # blocks per line; the process prints and flushes
        lines.append(line)
        if line.startswith(prefix):
            return lines
    pytest.fail(f"no line starting {prefix!r}: exited {proc.wait()} after {lines}")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def assert_one_line(err: str, command: str, sig: signal.Signals) -> None:
    assert "Traceback" not in err, err
    line = f"topicproj {command}: interrupted by {sig.name}; temporary files removed\n"
    assert err.endswith(line)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_project_stops_cleanly(model_dir, big_catalog, tmp_path, sig):
    out = tmp_path / "out.parquet"
    proc = start("project", "--model", model_dir, "--input", big_catalog, "--output", out,
                 "--explain", "5", "--quiet")  # fmt: skip
    wait_for(lambda: bool(temporaries(tmp_path)), proc, "a temporary file")
    proc.send_signal(sig)
    rc, err = finish(proc)
    assert rc == STATUS[sig], err
    assert_one_line(err, "project", sig)
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no output, no temporary


def test_train_stops_cleanly_and_prints_epochs_without_a_terminal(big_catalog, tmp_path):
    small = head(big_catalog, 1000, tmp_path.parent / "train.jsonl")
    out = tmp_path / "model"
    proc = start("train", "--input", small, "--output", out, "--topics", "4", "--device", "cpu",
                 "--max-epochs", "100000", "--patience", "100000", "--min-df", "2")  # fmt: skip
    lines = wait_for_line(proc, "epoch 1/100000: loss ")
    wait_for_line(proc, "epoch 2/100000: loss ")  # one a line, as they come
    proc.send_signal(signal.SIGTERM)
    rc, err = finish(proc)
    assert rc == 143, err
    assert_one_line(err, "train", signal.SIGTERM)
    assert all(line.startswith("epoch ") for line in err.splitlines()[:-1]), lines
    assert lines[0].startswith("read 1000 items")
    assert list(tmp_path.iterdir()) == []


def test_evaluate_stops_cleanly(big_catalog, tmp_path):
    small = head(big_catalog, 1500, tmp_path / "catalog.jsonl")
    out = tmp_path / "report"
    proc = start("evaluate", "--input", small, "--output", out, "--topics", "4",
                 "--activations", "relu,overlap", "--seeds", "0")  # fmt: skip
    wait_for_line(proc, "read 1500 items")
    proc.send_signal(signal.SIGINT)
    rc, err = finish(proc)
    assert rc == 130, err
    assert_one_line(err, "evaluate", signal.SIGINT)
    assert not out.exists()


def test_a_later_run_removes_what_a_killed_one_left(model_dir, big_catalog, tmp_path):
    out = tmp_path / "out.parquet"
    argv = ("project", "--model", model_dir, "--input", big_catalog, "--output", out, "--quiet")
    proc = start(*argv, "--explain", "5")
    wait_for(lambda: bool(temporaries(tmp_path)), proc, "a temporary file")
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait(30)
    (left,) = temporaries(tmp_path)
    assert left.name == f".out.parquet.{proc.pid}.tmp"
    small = head(big_catalog, 100, tmp_path / "small.jsonl")
    rc, err = finish(start(*argv[:4], small, *argv[5:]))
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "small.jsonl"]


def test_leftovers_of_dead_processes_go_and_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    model = tmp_path / "model"
    gone = [tmp_path / f".model.{dead_pid}.abcd_123.tmp", tmp_path / f".model.{dead_pid}.tmp"]
    gone[0].mkdir()
    (gone[0] / "weights.safetensors").write_bytes(b"half")
    gone[1].write_bytes(b"half")
    kept = [
        tmp_path / f".model.{os.getpid()}.tmp",  # a live run's
        tmp_path / f".model.5.{dead_pid}.tmp",  # another output's ("model.5")
        tmp_path / "model.json",
    ]
    for path in kept:
        path.write_bytes(b"x")
    assert sorted(remove_leftovers(model)) == sorted(gone)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
