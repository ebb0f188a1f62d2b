"""Which columns of a catalog hold what, and how a keywords cell that is a string splits.

Every reader (and both projection engines) takes one `Columns`: the keywords and id columns by
name, the separator of string cells, and the columns a projection passes through to its output.
`separator_hint` tells, from keywords a model did not know, whether the cells were probably
split on the wrong character: the usual cause of a run in which nothing is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SEPARATORS = (",", ";", "|")  # what people separate lists with, in the order hints try them


@dataclass(frozen=True)
class Columns:
    keywords: str = "keywords"
    id: str = "id"  # when the catalog has no such column, items are numbered from 1
    genres: str = "genres"  # read where present (evaluation), never required
    separator: str = "|"  # splits a keywords cell that is a plain string, not a JSON list
    keep: tuple[str, ...] = ()  # passed through to a projection's output, as text

    def __post_init__(self) -> None:
        if not self.keywords or not self.id:
            raise ValueError("the keywords and id column names must not be empty")
        if not self.separator:
            raise ValueError("the separator must not be empty")
        clash = {self.keywords, self.id} & set(self.keep)
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))}: already in the output; do not keep it")
        if len(set(self.keep)) != len(self.keep):
            raise ValueError("a column is kept twice")

    def wanted(self, available: Iterable[str]) -> list[str]:
        """The columns to read, of those `available`, in a fixed order."""
        names = set(available)
        return [c for c in (self.id, self.keywords, self.genres, *self.keep) if c in names]

    def missing(self, available: Iterable[str]) -> list[str]:
        """Required columns not among `available`: keywords, those kept, and an id column
        named other than `id` (without one named `id`, items are numbered)."""
        names = set(available)
        required = (self.keywords, *self.keep, *([self.id] if self.id != "id" else []))
        return [c for c in required if c not in names]


DEFAULT_COLUMNS = Columns()


def separator_hint(unknown: Iterable[str], current: str) -> str | None:
    """The separator that most of these unknown keywords contain, if it is not `current`.

    A keyword that holds a separator is a whole cell read as one keyword: `"alien, space"`.
    """
    sample = list(unknown)
    if not sample:
        return None
    for sep in SEPARATORS:
        if sep != current and sum(sep in k for k in sample) * 2 > len(sample):
            return sep
    return None
