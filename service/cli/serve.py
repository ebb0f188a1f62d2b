"""`topicproj serve` and `topicproj health`.

The serve flags are derived from `Settings` by pydantic-settings: one flag per setting, with the
setting's description as its help, so a new setting is a new flag and the two cannot drift.
`TOPICPROJ_*` variables set the same settings; a flag wins over a variable.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from topicproj.models.errors import TopicprojError


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from pydantic import ValidationError

    from topicproj.service.serving.workers import run
    from topicproj.service.settings import Settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    init: dict[str, Any] = {"metrics_port": None} if args.no_metrics else {}
    try:
        settings = Settings(**init, _cli_settings_source=args.settings_source(parsed_args=args))
    except ValidationError as e:
        raise TopicprojError(
            "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        ) from None
    return run(settings)


def cmd_health(args: argparse.Namespace) -> int:
    import grpc

    from topicproj.service.client import check_health

    try:
        token = args.token or os.environ.get("TOPICPROJ_AUTH_TOKEN") or None
        status = check_health(
            args.address,
            timeout=args.timeout,
            service=args.service,
            ca_file=args.ca_file,
            token=token,
        )
    except grpc.RpcError as e:
        print(f"{args.address}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    print(f"{args.address}: {status}")
    return 0 if status == "SERVING" else 1


def _needs_the_server(args: argparse.Namespace) -> int:
    raise ModuleNotFoundError("pydantic_settings is not installed", name="pydantic_settings")


def add_parsers(sub: Any) -> None:
    try:
        from pydantic_settings import CliSettingsSource

        from topicproj.service.settings import Settings
    except ModuleNotFoundError:  # the client alone is installed: say so when serve is asked for
        p = sub.add_parser("serve", help="serve a model (needs topicproj[server])")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_needs_the_server)
    else:
        _add_serve(sub, CliSettingsSource, Settings)
    _add_health(sub)


def _add_serve(sub: Any, CliSettingsSource: Any, Settings: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over gRPC, with Prometheus metrics",
        description="Serve a model over gRPC. Every flag can also be set as a TOPICPROJ_* "
        "variable (--max-wait-ms as TOPICPROJ_MAX_WAIT_MS); a flag wins. 'none' unsets an "
        "optional setting.",
    )
    source = CliSettingsSource(
        Settings,
        root_parser=p,
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_parse_none_str="none",
    )
    _readable_metavars(p)
    p.add_argument("--no-metrics", action="store_true", help="the same as --metrics-port none")
    p.set_defaults(func=cmd_serve, settings_source=source)


# pydantic-settings names a flag's value by its Python type ({SecretStr,none}, {Path,none});
# the help shows what to type instead.
_METAVARS = {"Path": "PATH", "int": "INT", "float": "NUMBER", "str": "TEXT", "SecretStr": "SECRET"}


def _readable_metavars(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if not isinstance(action.metavar, str) or not action.option_strings:
            continue
        names = action.metavar.strip("{}").split(",")
        if all(n in _METAVARS or n == "none" for n in names):
            action.metavar = "|".join(_METAVARS.get(n, n) for n in names)


def _add_health(sub: Any) -> None:
    p = sub.add_parser("health", help="exit 0 only when the server reports SERVING")
    p.add_argument("--address", default="127.0.0.1:50051", help="HOST:PORT")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds")
    p.add_argument("--service", default="", help="service name; empty means the whole server")
    p.add_argument("--ca-file", help="connect over TLS, trusting this PEM certificate")
    p.add_argument(
        "--token", help="bearer token, for servers with --auth-all (default TOPICPROJ_AUTH_TOKEN)"
    )
    p.set_defaults(func=cmd_health)
