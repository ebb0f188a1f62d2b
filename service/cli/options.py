"""Command-line flags derived from `TrainOptions`: one definition, every command that trains.

`topicproj train` takes every option; `topicproj jobs start` takes those a `TrainRequest`
carries. A flag left out means the option's default, which the help text shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from topicproj.models.core.options import DEFAULTS, TrainOptions


def keyword_file(path: str) -> tuple[str, ...]:
    """The keywords of a file: one a line, blank lines and `#` comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise argparse.ArgumentTypeError(f"cannot read the keyword file {path}: {e}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(line for line in lines if line)


def finite_float(text: str) -> float:
    """A float flag: inf and nan are refused here, before anything is trained or sent."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


_TYPES = {
    "int": int,
    "float": finite_float,
    "str": str,
    "int | None": int,
    "float | None": finite_float,
    "tuple[str, ...]": keyword_file,
}


def flag(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("flag", "--" + f.name.replace("_", "-")))


def option_flag(name: str) -> str:
    """The flag a user types for the option or parameter `name` (n_topics: --topics)."""
    for f in TrainOptions.fields():
        if f.name == name:
            return flag(f)
    return "--" + name.replace("_", "-")


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum`, refused with the flag's usage."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "count"  # argparse names the type in its messages
    return parse


def add_option_args(
    parser: argparse.ArgumentParser,
    names: Iterable[str] | None = None,
    *,
    required: Iterable[str] = (),
) -> list[str]:
    """Add a flag for each option in `names` (all by default); returns the option names."""
    wanted = set(names) if names is not None else None
    must = set(required)
    added = []
    for f in TrainOptions.fields():
        if wanted is not None and f.name not in wanted:
            continue
        default = getattr(DEFAULTS, f.name)
        shown = "none" if default == () else default
        text = f.metadata["help"] + (
            ""
            if f.name in must
            else (" (default: unset)" if default is None else f" (default: {shown})")
        )
        parser.add_argument(
            flag(f),
            metavar=f.metadata.get("metavar"),
            dest=f.name,
            type=_TYPES[str(f.type)],
            choices=f.metadata.get("choices"),
            required=f.name in must,
            default=None,
            help=text,
        )
        added.append(f.name)
    return added


def given_options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options among `names` that were given on the command line."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
