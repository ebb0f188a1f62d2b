"""The command line of `python -m benchmarks load`: parse, run every server, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from benchmarks.machine import command_line, cpu_name

from .ceiling import in_process_rate
from .clients import ClientsFailed, Result, drive
from .profiling import Profiler
from .report import profile_table, table
from .scenarios import (
    CLIENTS_PER_CHANNEL,
    DEFAULT_SCENARIOS,
    DEFAULT_SERVERS,
    ROOT,
    RUNS,
    Scenario,
    ServerConfig,
    parse_scenarios,
    parse_servers,
    server_configs,
)
from .servers import ServerCrashed, ServerProcess, checkout, model_description, running
from .training import TRAINING_CATALOG, end_training, start_training, write_training_catalog
from .workload import Pool, build_requests, ensure_model, keyword_pool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks load",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument(
        "--scenarios",
        type=parse_scenarios,
        help=f"CLIENTSxITEMS,... (default {DEFAULT_SCENARIOS}, or the one given by --clients "
        "and --items-per-request)",
    )
    p.add_argument("--clients", type=int, help="concurrent clients, one scenario (default 64)")
    p.add_argument(
        "--items-per-request", type=int, help="items per request, one scenario (default 1)"
    )
    p.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per run (default 10)"
    )
    p.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds before that (default 2)"
    )
    p.add_argument("--model", type=Path, help="model directory (default: a cached one in runs/)")
    p.add_argument(
        "--data",
        type=Path,
        help="catalog for the keyword pool (default ../shared/data/tmdb_5000_movies.csv.zip "
        "if present, else the synthetic catalog)",
    )
    p.add_argument(
        "--servers",
        type=parse_servers,
        default=parse_servers(DEFAULT_SERVERS),
        help=f"servers to compare, the first 'batched' (default {DEFAULT_SERVERS}; also "
        "workersN: the batched server with --workers N)",
    )
    p.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="processes the clients are spread over (default 1)",
    )
    p.add_argument(
        "--before",
        default="HEAD~1",
        help="git revision the 'before' server runs from (default HEAD~1); it gets requests "
        "in the form it knows, so use it with --form messages",
    )
    p.add_argument(
        "--clients-per-channel",
        type=int,
        default=CLIENTS_PER_CHANNEL,
        help="clients sharing one HTTP/2 connection (default %(default)s); with --workers the "
        "kernel spreads connections, not calls, so fewer clients per channel spread better",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the batched server with py-spy over the measured window and report "
        "where its GIL time goes",
    )
    p.add_argument("--max-batch-items", type=int, help="batched server (default: its default)")
    p.add_argument("--max-wait-ms", type=float, help="batched server (default: its default)")
    p.add_argument("--device", help="server device (default: the server's, auto)")
    p.add_argument(
        "--form",
        choices=("columnar", "messages"),
        default="columnar",
        help="columnar: packed requests and column answers, what the Python clients send; "
        "messages: one Item and one Projection message per item, the portable forms "
        "(default columnar)",
    )
    p.add_argument("--top-k", type=int, default=0, help="top_k of every request (default 0)")
    p.add_argument("--omit-dense", action="store_true", help="set omit_topics in every request")
    p.add_argument(
        "--timeout", type=float, default=30.0, help="deadline of each call, seconds (default 30)"
    )
    p.add_argument(
        "--startup-timeout", type=float, default=120.0, help="seconds to SERVING (default 120)"
    )
    p.add_argument("--seed", type=int, default=0, help="shuffle of the keyword pool (default 0)")
    p.add_argument(
        "--zipf",
        type=float,
        metavar="S",
        help="traffic with repetition: each request's items drawn from a Zipf law of exponent S "
        "over the pool's items (popular movies asked again and again), each sent with its own "
        "id; default: every item in turn, each request distinct until the pool wraps around",
    )
    p.add_argument("--out", type=Path, help="append the results (Markdown) to this file")
    return p


def resolve_scenarios(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Scenario]:
    single = args.clients is not None or args.items_per_request is not None
    if args.scenarios is not None:
        if single:
            parser.error("give either --scenarios or --clients/--items-per-request, not both")
        return list(args.scenarios)
    if single:
        clients = args.clients if args.clients is not None else 64
        items = args.items_per_request if args.items_per_request is not None else 1
        if clients < 1 or items < 1:
            parser.error("--clients and --items-per-request must be >= 1")
        return [Scenario(clients, items)]
    return parse_scenarios(DEFAULT_SCENARIOS)


def knows_packed(revision: str) -> bool:
    """Whether the project at `revision` serves the packed form (the columnar requests)."""
    shown = subprocess.run(
        ["git", "show", f"{revision}:proto/topicproj/v1/topicproj.proto"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
    )
    return shown.returncode == 0 and "PackedItems" in shown.stdout


async def run(args: argparse.Namespace, scenarios: list[Scenario]) -> int:
    wall_start = time.perf_counter()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    pool = keyword_pool(args.data)
    model = Path(args.model).resolve() if args.model is not None else ensure_model(pool)
    with contextlib.ExitStack() as stack:
        before = None
        if "before" in args.servers:
            before = (args.before, stack.enter_context(checkout(args.before)))
        configs = server_configs(args.servers, args.max_batch_items, args.max_wait_ms, before)
        return await _run(args, scenarios, pool, model, configs, wall_start, load_before)


async def _run(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    pool: Pool,
    model: Path,
    configs: list[ServerConfig],
    wall_start: float,
    load_before: float,
) -> int:
    results: list[Result] = []
    problems: list[str] = []
    profiles: list[str] = []
    notes: list[str] = []
    in_process: dict[Scenario, float] = {}
    model_info = ""
    with tempfile.TemporaryDirectory(prefix="topicproj-load-") as tmp:
        if any(c.train for c in configs):
            write_training_catalog(pool, Path(tmp) / TRAINING_CATALOG)
        for scenario in scenarios:
            by_form = {
                form: build_requests(
                    pool, scenario, args.top_k, args.omit_dense, args.seed, form, args.zipf
                )
                for form in {args.form, *(c.via for c in configs if c.via == "oip")}
            }
            in_process[scenario] = in_process_rate(model, by_form[args.form])
            # A fresh server per run: no run inherits another's queue, threads or allocations.
            for n, config in enumerate(configs):
                tag = f"{scenario.clients}x{scenario.items}-{n}"
                print(f"{scenario.label}, {config.name}: ", end="", file=sys.stderr, flush=True)
                server = ServerProcess(
                    model, config, args.device, Path(tmp), tag, request_items=scenario.items
                )
                result = Result(scenario, config, args.duration)
                profiler = Profiler(RUNS / "profiles", tag) if args.profile and n == 0 else None
                with running(server):
                    try:
                        await server.wait_serving(args.startup_timeout)
                        if not model_info and not config.noop and config.peer is None:
                            model_info = await model_description(server.address)
                        job = await start_training(server.address) if config.train else None
                        requests = by_form[config.via if config.via == "oip" else args.form]
                        result = await drive(server, requests, scenario, config, args, profiler)
                        if job is not None:
                            notes.append(
                                f"{scenario.label}, {config.name}: "
                                + await end_training(server.address, job)
                            )
                    except ServerCrashed as e:
                        result.note = "server did not start"
                        problems.append(f"{scenario.label}, {config.name}: {e}")
                    except (TimeoutError, grpc.aio.AioRpcError, ClientsFailed) as e:
                        result.note = "no connection"
                        problems.append(
                            f"{scenario.label}, {config.name}: {e!r}\n{server.log_tail()}"
                        )
                    alive = server.proc is not None and server.proc.poll() is None
                if profiler is not None and not result.note:
                    profiles += profile_table(scenario, config, profiler)
                if not alive and not result.note:
                    result.note = f"server died (status {server.returncode})"
                    problems.append(
                        f"{scenario.label}, {config.name}: server exited with status "
                        f"{server.returncode} during the run\n{server.log_tail()}"
                    )
                elif server.returncode not in (0, None) and not result.note:
                    problems.append(
                        f"{scenario.label}, {config.name}: server exited with status "
                        f"{server.returncode} after SIGTERM\n{server.log_tail()}"
                    )
                if bad := server.log_problems():
                    problems.append(
                        f"{scenario.label}, {config.name}: {len(bad)} error lines in the "
                        f"server log\n{server.log_tail()}"
                    )
                if result.errors:
                    problems.append(
                        f"{scenario.label}, {config.name}: failed calls {dict(result.errors)}"
                    )
                results.append(result)
                print(
                    f"{result.requests_per_s:,.0f} requests/s, "
                    f"{sum(result.errors.values())} errors",
                    file=sys.stderr,
                )

    mean_kw = sum(map(len, pool.keywords)) / max(len(pool.keywords), 1)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    model_path = Path(model).resolve()
    model_shown = str(model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model)
    text = [
        "```sh",
        command_line(args.entry, args.argv),
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), {platform.system()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}; {date}; "
        f"1-minute load average {load_before:.2f} before the run.",
        f"Model: `{model_shown}` ({model_info or 'not reached'}). Keyword pool: "
        f"{pool.source}, {len(pool.keywords)} items with keywords, {mean_kw:.1f} keywords each.",
        f"Each row: a fresh `topicproj serve` process on 127.0.0.1, {args.warmup:g} s warm-up, "
        f"then {args.duration:g} s measured; clients send back to back over one HTTP/2 "
        f"connection per {args.clients_per_channel} clients, from {args.client_processes} "
        f"load-generator process(es); requests in the {args.form} form"
        + (f", top_k {args.top_k}" if args.top_k else "")
        + (", omit_topics" if args.omit_dense else "")
        + ". Errors count every failed call, "
        "warm-up included; CPU is cores busy on average over the measured window. "
        f"Wall time {time.perf_counter() - wall_start:.0f} s.",
        "",
        *table(results, in_process),
        "",
        *(f"- {n}" for n in notes),
        *([""] if notes else []),
        *profiles,
        "",  # a blank line after the table, so text appended next is not read as a row
    ]
    block = "\n".join(text)
    print(block)
    if args.out is not None:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(block)
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


def main(
    argv: Sequence[str] | None = None,
    *,
    shown: tuple[str, Sequence[str]] | None = None,
) -> int:
    """`shown`: the entry point and arguments to record as the command (for `peers`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.entry = "benchmarks.load"
    if shown is not None:
        args.entry, args.argv = shown[0], list(shown[1])
    scenarios = resolve_scenarios(args, parser)
    if "before" in args.servers and args.form != "messages" and not knows_packed(args.before):
        parser.error("the 'before' server does not know the packed form: add --form messages")
    if args.client_processes < 1 or args.clients_per_channel < 1:
        parser.error("--client-processes and --clients-per-channel must be >= 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    # SIGTERM unwinds like Ctrl-C, so the `running` blocks still stop the servers we started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(run(args, scenarios))
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
