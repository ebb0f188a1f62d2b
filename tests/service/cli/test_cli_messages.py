"""What the command line says: usage of the subcommand at fault, flag names rather than
attribute names, help on every flag, readable metavars, the port at fault, progress in logs,
and the next step where it is obvious."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from topicproj.models.data.synthetic import make_synthetic_catalog
from topicproj.models.errors import OptionError
from topicproj.models.offline.projection import project_catalog
from topicproj.service.cli.main import build_parser, main

from ..conftest import RunningServer

REPO = Path(__file__).resolve().parents[3]


def run(capsys, *argv: object) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """(exit status, stderr) of `main(argv)`, argparse's own exits included."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = int(e.code or 0)
    return rc, capsys.readouterr().err


def _parsers(
    parser: argparse.ArgumentParser, path: str = "topicproj"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_flag_and_argument_has_help_and_a_readable_metavar():
    missing, unreadable = [], []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            name = f"{path} {'/'.join(action.option_strings) or action.dest}"
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(name)
            metavar = action.metavar if isinstance(action.metavar, str) else ""
            # {a,b} is fine for choices; a Python type in it ({SecretStr,none}) is not.
            if action.choices is None and ("{" in metavar or "Str" in metavar):
                unreadable.append(f"{name} {metavar}")
    assert missing == [] and unreadable == []


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["project", "--model", "m", "--input", "i.csv", "--output", "o.parquet", "--top-kk", "3"],
         "usage: topicproj project "),
        (["jobs", "start", "--upload", "c.csv", "--topcs", "3"], "usage: topicproj jobs start "),
        (["call", "project", "alien", "--explian", "3"], "usage: topicproj call project "),
    ],
)  # fmt: skip
def test_a_typo_in_a_subcommands_flag_prints_that_subcommands_usage(capsys, argv, usage):
    rc, err = run(capsys, *argv)
    assert rc == 2
    assert err.startswith(usage), err
    assert f"unrecognized arguments: {' '.join(argv[-2:])}" in err


def test_messages_name_flags_not_attributes(capsys, tmp_path):
    rc, err = run(capsys, "train", "--topics", "1", "--output", tmp_path / "m", "--quiet")
    assert rc == 2 and "--topics must be at least 2, got 1" in err and "n_topics" not in err
    rc, err = run(capsys, "evaluate", "--min-df", "0", "--output", tmp_path / "r", "--quiet")
    assert rc == 2 and "--min-df must be a positive integer" in err and "min_df" not in err
    rc, err = run(capsys, "project", "--model", "m", "--input", "i.csv", "--output", "o.parquet",
                  "--top-k", "-1")  # fmt: skip
    assert rc == 2 and "argument --top-k: must be at least 0, got -1" in err
    # In Python, the parameter's own name.
    with pytest.raises(OptionError, match=r"^top_k must be >= 0"):
        project_catalog(None, ["i.csv"], tmp_path / "o.parquet", top_k=-1)  # type: ignore[arg-type]


def test_an_unknown_extension_names_the_format_flag(capsys, model_dir, tmp_path):
    src = tmp_path / "catalog.txt"
    src.write_text("alien space\n", encoding="utf-8")
    rc, err = run(capsys, "project", "--model", model_dir, "--input", src,
                  "--output", tmp_path / "o.parquet")  # fmt: skip
    assert rc == 2 and "with --format" in err


def test_a_missing_model_suggests_training_one(capsys, tmp_path):
    rc, err = run(capsys, "project", "--model", tmp_path / "nothing", "--input", "i.csv",
                  "--output", tmp_path / "o.parquet")  # fmt: skip
    assert rc == 2
    assert "not found" in err
    assert err.count("\n") == 1  # still one line
    assert "train one first: `topicproj train" in err and "make demo-model" in err


def test_training_prints_a_line_per_epoch_when_stderr_is_not_a_terminal(capsys, tmp_path):
    catalog = tmp_path / "c.jsonl"
    items = make_synthetic_catalog(n_items=200, n_topics=4, keywords_per_topic=6).catalog.keywords
    catalog.write_text("".join(json.dumps({"keywords": k}) + "\n" for k in items), "utf-8")
    common = ("--input", catalog, "--topics", "4", "--min-df", "2", "--device", "cpu")
    rc, err = run(capsys, "train", *common, "--output", tmp_path / "m", "--max-epochs", "3")
    assert rc == 0, err
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("loss " in line and "validation " in line for line in epochs)
    quiet = ("--output", tmp_path / "q", "--max-epochs", "1", "--quiet")
    rc, err = run(capsys, "train", *common, *quiet)
    assert rc == 0 and err == ""


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def test_a_busy_metrics_port_is_named(model):
    busy, port = _busy_port()
    with busy:
        server = RunningServer(model, wait=False, host="127.0.0.1", metrics_port=port)
        try:
            with pytest.raises(OSError) as e:
                server.started.result(30)
        finally:
            server.loop.call_soon_threadsafe(server.loop.stop)
            server.thread.join(5)
    assert f"cannot serve metrics on 127.0.0.1:{port}" in str(e.value)
    assert "--metrics-port" in str(e.value)


def test_a_busy_grpc_port_is_named_without_native_noise(model_dir):
    busy, port = _busy_port()
    with busy:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "topicproj.service.cli", "serve", "--model", model_dir),
                *("--host", "127.0.0.1", "--port", str(port), "--no-metrics"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "add_port.cc" not in done.stderr, done.stderr
