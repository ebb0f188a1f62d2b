"""Access control against real servers: bearer tokens, and TLS with a certificate made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from topicproj.service.client import TopicClient, check_health
from topicproj.service.client.channel import bearer
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[3]
TOKEN = "s3cret-token"


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def code_of(call, *args, **kwargs) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        call(*args, **kwargs)
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def test_state_changing_rpcs_need_the_token_and_the_rest_do_not(serve, catalog_items):
    server = serve(auth_token=TOKEN)
    s = stub(server.address)
    activate = pb.ActivateModelRequest(version="0123456789ab")
    assert code_of(s.ActivateModel, activate, timeout=5) == grpc.StatusCode.UNAUTHENTICATED
    for wrong in ("", "s3cret", TOKEN + "x", TOKEN.upper()):
        assert (
            code_of(s.ActivateModel, activate, timeout=5, metadata=bearer(wrong))
            == grpc.StatusCode.UNAUTHENTICATED
        )
    no_bearer = (("authorization", TOKEN),)  # the token without its scheme
    assert code_of(s.ActivateModel, activate, timeout=5, metadata=no_bearer) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    # the right token gets through to the handler, which has no registry to activate from
    assert (
        code_of(s.ActivateModel, activate, timeout=5, metadata=bearer(TOKEN))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    request = pb.ProjectRequest(item_list=pb.ItemList(items=[pb.Item(keywords=catalog_items[0])]))
    assert len(s.Project(request, timeout=5).projection_list.projections) == 1  # open
    labels = {"rpc": "ActivateModel", "code": "UNAUTHENTICATED"}
    assert server.metric_reaches("topicproj_requests_total", labels, 6)


def test_auth_all_protects_projection_and_health_too(serve, model, catalog_items):
    server = serve(auth_token=TOKEN, auth_all=True)
    request = pb.ProjectRequest(item_list=pb.ItemList(items=[pb.Item(keywords=catalog_items[0])]))
    assert code_of(stub(server.address).Project, request, timeout=5) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(server.address))
    check = health_pb2.HealthCheckRequest()
    assert code_of(health.Check, check, timeout=5) == grpc.StatusCode.UNAUTHENTICATED
    assert health.Check(check, timeout=5, metadata=bearer(TOKEN)).status == (
        health_pb2.HealthCheckResponse.SERVING
    )
    assert check_health(server.address, token=TOKEN) == "SERVING"
    with TopicClient(server.address, token=TOKEN) as client:
        got = client.project(catalog_items[:5])
    np.testing.assert_allclose(got.topics, model.transform(catalog_items[:5]), rtol=1e-6)


def test_tls_serves_clients_that_trust_the_certificate(serve, model, certificate, catalog_items):
    cert, key = certificate
    server = serve(tls_cert=cert, tls_key=key, auth_token=TOKEN)
    with TopicClient(server.address, ca_file=cert, token=TOKEN) as client:
        got = client.project(catalog_items[:5])
        assert client.get_model()["version"] == model.version_
    np.testing.assert_allclose(got.topics, model.transform(catalog_items[:5]), rtol=1e-6)
    assert check_health(server.address, ca_file=cert) == "SERVING"
    cli = subprocess.run(
        [
            *(sys.executable, "-m", "topicproj.service.cli", "health"),
            *("--address", server.address, "--ca-file", str(cert), "--timeout", "5"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and "SERVING" in cli.stdout
    # A plaintext client cannot talk to a TLS server.
    request = pb.ProjectRequest(item_list=pb.ItemList(items=[pb.Item(keywords=catalog_items[0])]))
    assert code_of(stub(server.address).Project, request, timeout=3) == (
        grpc.StatusCode.UNAVAILABLE
    )


def test_settings_refuse_half_configured_security(certificate, tmp_path):
    cert, _ = certificate
    with pytest.raises(ValidationError, match="both tls_cert and tls_key"):
        Settings(tls_cert=cert)
    with pytest.raises(ValidationError, match="not a readable file"):
        Settings(tls_cert=cert, tls_key=tmp_path / "missing.key")
    with pytest.raises(ValidationError, match="auth_all needs an auth_token"):
        Settings(auth_all=True)
    with pytest.raises(ValidationError, match="auth_token is empty"):
        Settings(auth_token="")


def test_settings_refuse_a_registry_with_several_workers(tmp_path):
    with pytest.raises(ValidationError, match="more than one worker is not supported"):
        Settings(model_root=tmp_path, workers=2)


def test_auth_all_refuses_the_inference_protocol_cleanly(serve):
    """With --auth-all, an OIP call without the token is UNAUTHENTICATED and counted so, not an
    internal error (which would feed the error-ratio alert)."""
    from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
    from topicproj.oip.v2 import grpc_predict_v2_pb2_grpc as oip_grpc

    server = serve(auth_token="s3cret", auth_all=True)
    stub = oip_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.address))
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelReady(oip.ModelReadyRequest(name="topicproj"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    labels = {"rpc": "ModelReady", "code": "UNAUTHENTICATED"}
    assert server.metric_reaches("topicproj_requests_total", labels, 1)
    assert server.metric("topicproj_requests_total", {"rpc": "ModelReady", "code": "INTERNAL"}) == 0
    ready = stub.ModelReady(
        oip.ModelReadyRequest(name="topicproj"), timeout=5, metadata=bearer("s3cret")
    )
    assert ready.ready
