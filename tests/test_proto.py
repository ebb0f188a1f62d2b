"""The committed generated code matches the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROTOS = ("topicproj/v1/topicproj.proto", "topicproj/oip/v2/grpc_predict_v2.proto")


def test_generated_code_matches_the_proto(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc")
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"  # timestamp.proto and friends
    rc = protoc.main(
        [
            "protoc",
            f"-I{REPO / 'proto'}",
            f"-I{well_known}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *(str(REPO / "proto" / p) for p in PROTOS),
        ]
    )
    assert rc == 0
    for proto in PROTOS:
        stem = proto.removesuffix(".proto")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            fresh = (tmp_path / (stem + suffix)).read_text()
            committed = (REPO / "proto" / (stem + suffix)).read_text()
            assert fresh == committed, f"{stem}{suffix} is stale: run `make proto` and commit it"


def test_the_training_options_are_the_same_on_both_sides_of_the_wire():
    """`TrainingOptions` in the contract carries every `TrainOptions` field, with presence
    (a list: empty is unset)."""
    from topicproj.models.core.options import TrainOptions
    from topicproj.v1 import topicproj_pb2 as pb

    fields = {f.name: f for f in pb.TrainingOptions.DESCRIPTOR.fields}
    assert set(fields) == set(TrainOptions.proto_fields())
    # A list has no presence in proto3: an empty `stop_keywords` means unset (the base's list).
    assert all(f.has_presence for f in fields.values() if not f.is_repeated)
    assert [f.name for f in fields.values() if f.is_repeated] == ["stop_keywords"]


@pytest.mark.parametrize("proto", PROTOS)
def test_every_field_is_documented(proto):
    text = (REPO / "proto" / proto).read_text().splitlines()
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
