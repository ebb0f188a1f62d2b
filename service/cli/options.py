"""Command-line flags derived from `TrainOptions`: one definition, every command that trains.

`topicproj train` takes every option; `topicproj jobs start` takes those a `TrainRequest`
carries. A flag left out means the option's default, which the help text shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from topicproj.models.core.options import DEFAULTS, TrainOptions


def finite_float(text: str) -> float:
    """A float flag: inf and nan are refused here, before anything is trained or sent."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


_TYPES = {"int": int, "float": finite_float, "str": str, "int | None": int}


def flag(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("flag", "--" + f.name.replace("_", "-")))


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
        text = f.metadata["help"] + ("" if f.name in must else f" (default: {default})")
        parser.add_argument(
            flag(f),
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
