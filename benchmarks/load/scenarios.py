"""Scenarios (clients x items per request) and the server configurations compared."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TMDB = ROOT.parent / "shared" / "data" / "tmdb_5000_movies.csv.zip"
RUNS = ROOT / "runs"
HOST = "127.0.0.1"  # the only address this tool ever sends to
SERVICE = "topicproj.v1.TopicProjectionService"
PROJECT = f"/{SERVICE}/Project"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
DEFAULT_SCENARIOS = "64x1,16x256"

# One grpc.aio channel (one HTTP/2 connection) per 16 clients: a single connection funnels
# every call's frames through one transport, which can saturate before the server does, while a
# channel per client costs the client process more connections to poll than it gains. 16
# concurrent streams per connection is far under HTTP/2's default limit of 100.
CLIENTS_PER_CHANNEL = 16
CHANNEL_OPTIONS = [
    # Without a local subchannel pool, channels to the same target share one TCP connection
    # process-wide, which would defeat the point of having several.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
# Requests kept pre-serialised per scenario; enough distinct ones that the server's vocabulary
# lookups see the whole pool, few enough to stay in memory at any request size.
MAX_POOL_ITEMS = 1 << 17
ERROR_BACKOFF_S = 0.01


@dataclass(frozen=True)
class Scenario:
    clients: int
    items: int

    @property
    def label(self) -> str:
        return f"{self.clients} × {self.items}"


@dataclass(frozen=True)
class ServerConfig:
    name: str
    flags: tuple[str, ...] = ()  # extra `topicproj serve` flags
    kind: str = "batched"  # batched, unbatched, noop, workersN, before: what comparisons key on
    noop: bool = False  # the ceiling server of benchmarks.noop_server instead of topicproj
    tree: Path | None = None  # run the server from this source tree (an older commit)
    train: bool = False  # a training job runs in the server while it is measured
    # How the load reaches it: None, the --form of the run (domain API); "oip", ModelInfer with
    # raw tensors from the same load generator; "tritonclient", tritonclient's asyncio client
    # from its own environment, as a team on Triton's tools would drive it.
    via: str | None = None
    # A peer server instead of topicproj (a module of benchmarks.peers), and the metadata its
    # clients must send (Ray Serve's gRPC proxy routes by the "application" key).
    peer: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()


def parse_scenarios(text: str) -> list[Scenario]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            clients, items = (int(x) for x in part.split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"scenario {part!r}: expected CLIENTSxITEMS, e.g. 64x1"
            ) from None
        if clients < 1 or items < 1:
            raise argparse.ArgumentTypeError(f"scenario {part!r}: both numbers must be >= 1")
        out.append(Scenario(clients, items))
    if not out:
        raise argparse.ArgumentTypeError("no scenario given")
    return out


SERVER_KINDS = (
    "batched",
    "cached",
    "unbatched",
    "noop",
    "before",
    "training",
    "oip",
    "tritonclient",
    "rayserve",
    "plain",
    "noprofile",
    "nodirect",
    "workersN",
)
DEFAULT_SERVERS = "batched,unbatched,noop"


def parse_servers(text: str) -> list[str]:
    kinds = [k.strip().lower() for k in text.split(",") if k.strip()]
    for k in kinds:
        if k not in SERVER_KINDS[:-1] and not (k.startswith("workers") and k[7:].isdigit()):
            raise argparse.ArgumentTypeError(
                f"server {k!r}: expected one of {', '.join(SERVER_KINDS[:-1])}, workers2, "
                "workers4, ..."
            )
    if not kinds or kinds[0] != "batched":
        raise argparse.ArgumentTypeError(
            "the first server must be 'batched': the others are compared with it"
        )
    return kinds


def server_configs(
    kinds: Sequence[str],
    max_batch_items: int | None,
    max_wait_ms: float | None,
    before: tuple[str, Path] | None = None,
) -> list[ServerConfig]:
    from topicproj.service.settings import Settings

    fields = Settings.model_fields
    items = max_batch_items if max_batch_items is not None else fields["max_batch_items"].default
    wait = max_wait_ms if max_wait_ms is not None else fields["max_wait_ms"].default
    # Passed explicitly (not left to the server's defaults) so the label is what actually ran.
    # The response cache is off except in "cached": the load replays its pool of requests, so a
    # cache would answer most of them and the rows would compare a lookup with the peers'
    # projections. "cached" against "batched" is what the cache is worth on the same traffic.
    batching = ("--max-batch-items", str(items), "--max-wait-ms", str(wait))
    no_cache = ("--response-cache-bytes", "0")
    out = []
    for kind in kinds:
        if kind == "batched":
            name = f"batched ({items} items, {wait:g} ms)"
            out.append(ServerConfig(name, (*batching, *no_cache), kind))
        elif kind == "cached":
            cache = fields["response_cache_bytes"].default
            name = f"batched, response cache ({cache >> 20} MiB)"
            out.append(ServerConfig(name, (*batching, "--response-cache-bytes", str(cache)), kind))
        elif kind == "unbatched":
            flags = ("--max-batch-items", "1", *no_cache)
            out.append(ServerConfig("unbatched (1 item)", flags, kind))
        elif kind == "noop":
            out.append(ServerConfig("no-op grpc.aio (ceiling)", (), kind, noop=True))
        elif kind == "oip":
            name = "batched, Open Inference Protocol (ModelInfer, raw tensors)"
            out.append(ServerConfig(name, (*batching, *no_cache), kind, via="oip"))
        elif kind == "tritonclient":
            name = "batched, OIP from tritonclient.grpc.aio"
            out.append(ServerConfig(name, (*batching, *no_cache), kind, via="tritonclient"))
        elif kind == "rayserve":
            name = f"Ray Serve, @serve.batch ({items} items, {wait:g} ms), gRPC ingress"
            out.append(
                ServerConfig(
                    name,
                    ("--max-batch-items", str(items), "--max-wait-ms", str(wait)),
                    kind,
                    peer="ray_serve_app",
                    metadata=(("application", "topicproj"),),
                )
            )
        elif kind == "plain":
            out.append(
                ServerConfig("plain grpc.aio, no batching", (), kind, peer="unbatched_server")
            )
        elif kind == "noprofile":
            name = "batched, no traffic profile"
            out.append(ServerConfig(name, (*batching, *no_cache, "--no-traffic-profile"), kind))
        elif kind == "nodirect":
            name = "batched, no direct path (--direct-items 0)"
            out.append(ServerConfig(name, (*batching, *no_cache, "--direct-items", "0"), kind))
        elif kind == "training":
            name = "batched, while a job trains"
            out.append(ServerConfig(name, (*batching, *no_cache), kind, train=True))
        elif kind == "before":
            assert before is not None
            ref, tree = before
            out.append(ServerConfig(f"batched, before (`{ref}`)", batching, kind, tree=tree))
        else:
            n = int(kind[7:])
            out.append(
                ServerConfig(
                    f"batched, {n} workers", (*batching, *no_cache, "--workers", str(n)), kind
                )
            )
    return out
