"""The `topicproj` command line: train, project, evaluate and study models here; serve them;
operate a running server.

Errors that the user can fix (bad input, a damaged model) print one line naming the problem and
exit with status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from topicproj.models.errors import ModelDirectoryError, OptionError, TopicprojError
from topicproj.service.version import package_version

from . import call, local, remote, research, serve, traffic, versions
from .interrupts import Interrupted, signals_raise
from .options import option_flag

EXIT_USAGE = 2
WRITERS = frozenset({"train", "project", "evaluate", "study"})  # commands that write files
# Installed by topicproj[server] only: a command that needs one says so instead of a traceback.
SERVER_ONLY = frozenset(
    {
        "torch",
        "sklearn",
        "scipy",
        "pyarrow",
        "safetensors",
        "tqdm",
        "pydantic",
        "pydantic_settings",
        "prometheus_client",
        "grpc_reflection",
    }
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="topicproj", description=__doc__)
    parser.add_argument("--version", action="version", version=f"topicproj {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    local.add_parsers(sub)
    research.add_parsers(sub)
    serve.add_parsers(sub)
    versions.add_parsers(sub)
    remote.add_parsers(sub)
    call.add_parsers(sub)
    traffic.add_parsers(sub)
    return parser


def _hint(error: Exception) -> str:
    """The next step, where it is obvious from the error."""
    if isinstance(error, ModelDirectoryError) and not Path(error.path).exists():
        return (
            "; train one first: `topicproj train --input CATALOG --output DIR`, or "
            "`make demo-model` for the demo model in runs/demo-model"
        )
    return ""


def command_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The parser of the (sub)command that `args` chose: `topicproj jobs start`'s, not the
    top level's."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs else None
        if chosen is None or chosen not in subs[0].choices:
            return parser
        parser = subs[0].choices[chosen]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a typo in a subcommand's flag: that subcommand's usage, not the top level's
        command_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    args.argv = argv
    # The server handles its own signals (a graceful drain); every other command is stopped
    # by them cleanly: its temporary files removed, one line, 130 or 143.
    guard = contextlib.nullcontext() if args.command == "serve" else signals_raise()
    try:
        with guard:
            return int(args.func(args))
    except Interrupted as e:
        cleaned = "; temporary files removed" if args.command in WRITERS else ""
        name = signal.Signals(e.signum).name
        print(f"topicproj {args.command}: interrupted by {name}{cleaned}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print(f"topicproj {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in SERVER_ONLY:
            raise
        print(
            f"topicproj {args.command}: needs the server's dependencies ({e.name} is not "
            "installed): pip install 'topicproj[server]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except OptionError as e:  # named as the user named it: the flag
        print(f"topicproj {args.command}: error: {e.named(option_flag(e.option))}", file=sys.stderr)
        return EXIT_USAGE
    except (TopicprojError, ValueError, OSError) as e:
        hint = _hint(e)  # on the same line: an error is one line
        print(f"topicproj {args.command}: error: {e}{hint}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
