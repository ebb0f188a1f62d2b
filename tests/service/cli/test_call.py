"""`topicproj call`: project, explain and show the model of a running server from the shell."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from topicproj.service.cli.main import main
from topicproj.service.client import TopicClient

REPO = Path(__file__).resolve().parents[3]
TOKEN = "call-token"


def run(capsys, *argv: object) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_project_prints_each_items_top_topics_and_why(server, model, catalog_items, capsys):
    keywords = catalog_items[0][:3]
    rc, out, err = run(
        capsys, "call", "project", "--address", server.address, *keywords, "no such keyword",
        "--top-k", "3", "--explain", "3",
    )  # fmt: skip
    assert rc == 0, err
    with TopicClient(server.address) as client:
        want = client.project([[*keywords, "no such keyword"]], top_k=3, explain=3)
    lines = out.splitlines()
    assert lines[0] == f"model {model.version_}, {model.n_topics} topics"
    assert f"{len(keywords)} known, 1 unknown keywords" in out
    labels = model.labels()
    for topic, score in want.top[0]:
        assert f"  {topic:>5}  {score:>7.3f}  {labels[topic]}" in lines
    explanation = want.explanations[0]
    assert explanation["active_topics"]
    for t in explanation["active_topics"]:
        why = next(line for line in lines if line.startswith(f"  why {t['topic']}: "))
        assert f"= {t['pre_activation']:.3f}" in why
        assert all(k["keyword"] in why for k in t["keywords"])
    for t in explanation["closed_topics"]:
        assert any(line.startswith(f"  closed {t['topic']}: ") for line in lines)


def test_json_carries_the_clients_answer(server, model, catalog_items, capsys):
    items = [catalog_items[1], catalog_items[2][:2]]
    rc, out, err = run(
        capsys, "call", "project", "--address", server.address, "--json", "--all-topics",
        "--item", ", ".join(items[0]), "--item", ",".join(items[1]), "--explain", "2",
        "--top-k", "2",
    )  # fmt: skip
    assert rc == 0, err
    got = json.loads(out)
    with TopicClient(server.address) as client:
        want = client.project(items, top_k=2, explain=2)
    assert got["model_version"] == model.version_ and got["topic_count"] == model.n_topics
    assert [item["keywords"] for item in got["items"]] == items
    for i, item in enumerate(got["items"]):
        assert [(t["topic"], t["score"]) for t in item["top"]] == [
            (t, pytest.approx(s)) for t, s in want.top[i]
        ]
        assert [t["label"] for t in item["top"]] == want.top_labels[i]
        assert item["explanation"] == want.explanations[i]  # the contract's schema, as is
        np.testing.assert_allclose(item["topics"], want.topics[i], rtol=1e-6)
        assert item["known_keywords"] == int(want.known_keywords[i])


def test_model_shows_the_served_topics(server, model, capsys):
    rc, out, err = run(capsys, "call", "model", "--address", server.address)
    assert rc == 0, err
    assert out.splitlines()[0].startswith(f"model {model.version_}: {model.n_topics} topics")
    for k, label in enumerate(model.labels()):
        assert f"  {k:>5}  {label}: " in out
    rc, out, _ = run(capsys, "call", "model", "--address", server.address, "--json")
    assert rc == 0 and json.loads(out)["version"] == model.version_


def test_tls_and_the_token_from_a_flag_or_the_environment(
    serve, model, certificate, catalog_items, capsys, monkeypatch
):
    cert, key = certificate
    server = serve(tls_cert=cert, tls_key=key, auth_token=TOKEN, auth_all=True)
    base = ("call", "project", "--address", server.address, "--ca-file", cert, "--json")
    keywords = catalog_items[0]
    monkeypatch.delenv("TOPICPROJ_AUTH_TOKEN", raising=False)
    rc, _, err = run(capsys, *base, *keywords)
    assert rc == 1
    assert err.startswith("topicproj: UNAUTHENTICATED: ") and "--token" in err
    rc, out, err = run(capsys, *base, "--token", TOKEN, *keywords)
    assert rc == 0, err
    assert json.loads(out)["model_version"] == model.version_
    monkeypatch.setenv("TOPICPROJ_AUTH_TOKEN", TOKEN)
    rc, out, err = run(capsys, *base, *keywords)
    assert rc == 0, err


def test_no_server_says_where_it_looked_and_what_to_do(capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    rc, _, err = run(capsys, "call", "project", "--address", address, "--timeout", "3", "alien")
    assert rc == 1
    assert err.startswith("topicproj: UNAVAILABLE: ")
    assert f"is a server running at {address}?" in err and "topicproj serve" in err


def test_usage_errors_name_the_flag(capsys):
    rc, _, err = run(capsys, "call", "project")
    assert rc == 2 and "--item" in err
    with pytest.raises(SystemExit) as e:
        run(capsys, "call", "project", "alien", "--top-k", "-1")
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage: topicproj call project" in err
    assert "argument --top-k: must be at least 0, got -1" in err


def test_the_installed_command_runs(server, catalog_items):
    """The real entry point, in its own process: what a user types."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "topicproj.service.cli", "call", "project"),
            *("--address", server.address, "--top-k", "3", "--explain", "3"),
            *catalog_items[0][:2],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("model ") and "  why " in done.stdout
