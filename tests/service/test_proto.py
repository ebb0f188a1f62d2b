"""The committed generated code matches the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GENERATED = ("topicproj_pb2.py", "topicproj_pb2.pyi", "topicproj_pb2_grpc.py")


def test_generated_code_matches_the_proto(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc")
    rc = protoc.main(
        [
            "protoc",
            f"-I{REPO / 'proto'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(REPO / "proto/topicproj/v1/topicproj.proto"),
        ]
    )
    assert rc == 0
    for name in GENERATED:
        fresh = (tmp_path / "topicproj/v1" / name).read_text()
        committed = (REPO / "proto/topicproj/v1" / name).read_text()
        assert fresh == committed, f"{name} is stale: run `make proto` and commit the result"


def test_every_field_is_documented():
    text = (REPO / "proto/topicproj/v1/topicproj.proto").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(text):
        stripped = line.strip()
        is_field = (
            stripped.endswith(";")
            and "=" in stripped
            and not stripped.startswith(("syntax", "package", "option", "//"))
        )
        if is_field and not text[i - 1].strip().startswith("//"):
            undocumented.append(stripped)
    assert not undocumented, f"fields without a comment above them: {undocumented}"
