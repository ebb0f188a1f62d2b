"""Row accounting for a projection run: every row read is projected or skipped, and every row
projected is written. A run whose rows do not add up fails instead of reporting success."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from topicproj.models.errors import RowCountError

MAX_EXAMPLES = 5  # bad rows named in the summary and the marker


@dataclass
class RowCounts:
    read: int = 0  # rows in the inputs, bad ones included
    skipped: int = 0  # bad rows left out (--skip-bad-rows)
    projected: int = 0  # rows the model projected
    written: int = 0  # rows the output holds, as its own footers say
    bad_rows: list[str] = field(default_factory=list)  # the first few skip reasons

    def add(self, other: RowCounts) -> None:
        self.read += other.read
        self.skipped += other.skipped
        self.projected += other.projected
        self.written += other.written
        self.note_bad(other.bad_rows)

    def note_bad(self, reasons: list[str]) -> None:
        self.bad_rows.extend(reasons[: MAX_EXAMPLES - len(self.bad_rows)])

    def check(self, where: str) -> None:
        """Raise `RowCountError` unless read = projected + skipped and projected = written."""
        if self.read != self.projected + self.skipped:
            raise RowCountError(
                where,
                f"read {self.read} rows but projected {self.projected} and skipped "
                f"{self.skipped} ({self.read - self.projected - self.skipped} unaccounted for)",
            )
        if self.projected != self.written:
            raise RowCountError(
                where,
                f"projected {self.projected} rows but the output holds {self.written} "
                "(a truncated or interrupted write)",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowCounts:
        return cls(
            **{k: data[k] for k in ("read", "skipped", "projected", "written")},
            bad_rows=list(data.get("bad_rows", [])),
        )
