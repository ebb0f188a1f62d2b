"""The Markdown tables of a load run."""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

from .clients import Result
from .profiling import Profiler
from .scenarios import Scenario, ServerConfig


def _fmt(x: float, digits: int = 0) -> str:
    return "-" if math.isnan(x) else f"{x:,.{digits}f}"


def _ratio(x: float, y: float) -> str:
    return "-" if not y or math.isnan(x) or math.isnan(y) else f"{x / y:.2f}×"


def _comparable(a: Result | None, b: Result | None) -> bool:
    # A ratio against a run whose server failed would compare a bug, not a configuration.
    return all(r is not None and not r.note and r.latencies for r in (a, b))


def table(results: Sequence[Result], in_process: dict[Scenario, float]) -> list[str]:
    lines = [
        "| clients × items | server | requests/s | items/s | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU | client CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cores(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    by_scenario: dict[Scenario, list[Result]] = collections.defaultdict(list)
    for r in results:
        by_scenario[r.scenario].append(r)
    for scenario, rs in by_scenario.items():
        for r in rs:
            p50, p95, p99 = r.percentiles_ms()
            errors = sum(r.errors.values())
            err = str(errors) + (
                " (" + ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) + ")"
                if errors
                else ""
            )
            name = r.config.name + (f" — {r.note}" if r.note else "")
            lines.append(
                f"| {scenario.label} | {name} | {_fmt(r.requests_per_s)} | {_fmt(r.items_per_s)} "
                f"| {_fmt(p50, 1)} | {_fmt(p95, 1)} | {_fmt(p99, 1)} | {err} "
                f"| {cores(r.server_cpu)} | {cores(r.client_cpu)} |"
            )
        by_kind = {r.config.kind: r for r in rs}
        base = by_kind.get("batched")
        for kind, label in [
            ("unbatched", "batched / unbatched"),
            ("noop", "batched / no-op"),
            ("before", "batched / before"),
            ("training", "batched / while a job trains"),
            ("oip", "batched / Open Inference Protocol"),
            ("rayserve", "batched / Ray Serve"),
            ("plain", "batched / plain grpc.aio"),
            ("noprofile", "profile on / off"),
            ("nodirect", "direct path on / off"),
        ]:
            other = by_kind.get(kind)
            if _comparable(base, other):
                assert base is not None and other is not None
                b, o = base.percentiles_ms(), other.percentiles_ms()
                lines.append(
                    f"| {scenario.label} | *{label}* "
                    f"| {_ratio(base.requests_per_s, other.requests_per_s)} "
                    f"| {_ratio(base.items_per_s, other.items_per_s)} "
                    f"| {_ratio(b[0], o[0])} | {_ratio(b[1], o[1])} | {_ratio(b[2], o[2])} "
                    "| | | |"
                )
        for kind, r in by_kind.items():
            if kind.startswith("workers") and _comparable(r, base):
                assert base is not None
                lines.append(
                    f"| {scenario.label} | *{r.config.name} / 1 worker* "
                    f"| {_ratio(r.requests_per_s, base.requests_per_s)} "
                    f"| {_ratio(r.items_per_s, base.items_per_s)} | | | | | | |"
                )
        if (rate := in_process.get(scenario)) and _comparable(base, base):
            assert base is not None
            lines.append(
                f"| {scenario.label} | in-process (map + project) | | {_fmt(rate)} | | | | | | |"
            )
            lines.append(
                f"| {scenario.label} | *batched / in-process* | "
                f"| {_ratio(base.items_per_s, rate)} | | | | | | |"
            )
    return lines


def profile_table(scenario: Scenario, config: ServerConfig, profiler: Profiler) -> list[str]:
    shares, busy = profiler.breakdown()
    return [
        f"Where the GIL time of the server goes, {scenario.label}, {config.name} (py-spy "
        f"--gil, {Profiler.RATE} Hz over the measured window; the GIL was held "
        f"{busy:.0%} of the time):",
        "",
        "| part | share of GIL samples |",
        "|---|---:|",
        *(f"| {c} | {share:.1%} |" for c, share in shares),
        "",
        "",
    ]
