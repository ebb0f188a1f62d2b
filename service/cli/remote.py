"""`topicproj jobs ...`: train on a running server from the shell, and the connection flags
that every command talking to a server shares.

Thin wrappers over `TopicClient`: start, watch and cancel training jobs. The token comes from
`--token` or `TOPICPROJ_AUTH_TOKEN`; `--ca-file` connects over TLS. A gRPC error prints its
status and message and exits 1.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from topicproj.models.core.options import TrainOptions
from topicproj.models.data.formats import FORMATS

from .options import add_option_args, given_options

if TYPE_CHECKING:
    from topicproj.service.client import TopicClient

# grpc and the client are imported by the commands that call a server, not at start-up: every
# `topicproj` command builds these parsers, and `topicproj project` has no use for grpc.


def connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default="127.0.0.1:50051", help="HOST:PORT")
    p.add_argument("--token", help="bearer token (default TOPICPROJ_AUTH_TOKEN)")
    p.add_argument("--ca-file", help="connect over TLS, trusting this PEM certificate")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")


def connect(args: argparse.Namespace) -> TopicClient:
    from topicproj.service.client import TopicClient

    token = args.token or os.environ.get("TOPICPROJ_AUTH_TOKEN") or None
    return TopicClient(args.address, timeout=args.timeout, token=token, ca_file=args.ca_file)


_HINTS = {
    "UNAVAILABLE": "is a server running at {address}? Start one with `topicproj serve` (or "
    "`make run`), or pass --address HOST:PORT; a TLS server needs --ca-file",
    "UNAUTHENTICATED": "pass the server's token with --token or TOPICPROJ_AUTH_TOKEN",
}


def reports_rpc_errors(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        import grpc

        try:
            return command(args)
        except grpc.RpcError as e:
            code = e.code()  # type: ignore[attr-defined]
            print(f"topicproj: {code.name}: {e.details()}", file=sys.stderr)  # type: ignore[attr-defined]
            if hint := _HINTS.get(code.name):
                print(f"  hint: {hint.format(address=args.address)}", file=sys.stderr)
            return 1

    return run


def _job_line(job: dict[str, Any]) -> str:
    state = job["state"].removeprefix("STATE_")
    progress = job["progress"]
    line = f"{job['id']} {state} epoch {progress['epoch']}/{progress['max_epochs']}"
    if job.get("parent_version"):
        line += f" from {job['parent_version']}"
    if progress["epoch"]:
        line += f" loss {progress['train_loss']:.4f} validation {progress['validation_loss']:.4f}"
    if "response" in job:
        result = job["response"]
        line += f" model {result['model_version']}"
        line += " (activated)" if result["activated"] else ""
    if job.get("error"):
        line += f" error: {job['error']}"
    return line


@reports_rpc_errors
def cmd_jobs(args: argparse.Namespace) -> int:
    with connect(args) as client:
        if args.action == "start":
            # The request's fields are named as in the proto; TrainOptions says which is which.
            proto_name = {option: field for field, option in TrainOptions.proto_fields().items()}
            fields = {proto_name[k]: v for k, v in given_options(args, args.option_names).items()}
            if args.format is not None:
                fields["format"] = args.format
            upload_id = client.upload_catalog(args.upload) if args.upload else ""
            job = client.start_training(
                catalog_path=args.catalog_path or "",
                upload_id=upload_id,
                activate_on_success=args.activate,
                parent_version=args.parent or "",
                from_scratch=args.from_scratch,
                add_topics=args.add_topics,
                **fields,
            )
            if not args.watch:
                print(_job_line(job))
                return 0
            job_id = job["id"]
        elif args.action == "cancel":
            print(_job_line(client.cancel_training_job(args.job_id)))
            return 0
        elif args.action == "show":
            print(_job_line(client.training_job(args.job_id)))
            return 0
        elif args.action == "list":
            for job in client.training_jobs():
                print(_job_line(job))
            return 0
        else:
            job_id = args.job_id
        last: dict[str, Any] = {}
        for last in client.watch_training_job(job_id):
            print(_job_line(last), flush=True)
        return 0 if last.get("state") == "STATE_SUCCEEDED" else 1


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("jobs", help="train on a running server: start, watch, show, cancel")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("start", help="queue a training job")
    where = a.add_mutually_exclusive_group(required=True)
    where.add_argument("--catalog-path", help="a catalog under the server's --data-root")
    where.add_argument("--upload", help="a local catalog file, sent to the server first")
    a.add_argument("--activate", action="store_true", help="serve the model once it succeeds")
    start = a.add_mutually_exclusive_group()
    start.add_argument(
        "--parent",
        metavar="VERSION",
        help="train a child of this version (default: the served one); options not given are "
        "the parent's",
    )
    start.add_argument(
        "--from-scratch", action="store_true", help="no parent: options not given are defaults"
    )
    a.add_argument(
        "--add-topics",
        type=int,
        default=0,
        metavar="K",
        help="K new topics after the parent's, started from what the parent explains worst",
    )
    a.add_argument("--watch", action="store_true", help="print every epoch until it ends")
    a.add_argument("--format", choices=FORMATS, help="default: told by the file's extension")
    a.set_defaults(option_names=add_option_args(a))
    connection_args(a)
    a = actions.add_parser("list", help="every job the server knows, oldest first")
    connection_args(a)
    for name, text in (
        ("watch", "print the job's state at every change until it ends"),
        ("show", "the job's state now"),
        ("cancel", "cancel a queued or running job"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("job_id", help="the job's id, as `jobs start` or `jobs list` print it")
        connection_args(a)
    p.set_defaults(func=cmd_jobs)
