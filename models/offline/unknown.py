"""Keywords a projection run did not know: counted, a few kept as examples, and checked.

A run whose keywords are mostly unknown to the model writes rows of zeros that look like
results; the usual cause is the input, not the model (list cells split on the wrong character,
the wrong column, another catalog's vocabulary). `KeywordTally.check` turns that into an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from topicproj.models.core.vocabulary import Vocabulary, normalize_array
from topicproj.models.data.columns import separator_hint
from topicproj.models.errors import UnknownKeywordsError

# The share of a run's keywords that may be unknown before it fails. A model keeps the keywords
# on at least min_df items, so some are always unknown: 23% of TMDB's own keywords are, to the
# 50-topic TMDB model; a catalog read wrongly has close to 100%.
MAX_UNKNOWN_SHARE = 0.5
EXAMPLES = 50  # distinct unknown keywords kept, for the message and the separator hint
LOOK_AT = 256  # keywords of a batch looked at for examples, while fewer than EXAMPLES are kept


@dataclass
class KeywordTally:
    keywords: int = 0  # keyword occurrences read
    unknown: int = 0  # of them, unknown to the model
    examples: list[str] = field(default_factory=list)

    def add_batch(self, vocabulary: Vocabulary, keywords: pa.ListArray, unknown: int) -> None:
        flat = pc.list_flatten(keywords)
        self.keywords += len(flat)
        self.unknown += unknown
        if unknown and len(self.examples) < EXAMPLES:
            head = flat.slice(0, LOOK_AT)
            ids = vocabulary._lookup(normalize_array(head))
            fresh = [k for k, i in zip(head.to_pylist(), ids, strict=True) if i < 0]
            self.note(fresh)

    def note(self, examples: list[str]) -> None:
        for k in examples:
            if len(self.examples) >= EXAMPLES:
                break
            if k not in self.examples:
                self.examples.append(k)

    def add(self, other: KeywordTally) -> None:
        self.keywords += other.keywords
        self.unknown += other.unknown
        self.note(other.examples)

    def share(self) -> float:
        return self.unknown / self.keywords if self.keywords else 0.0

    def check(self, most: float | None, separator: str) -> None:
        """Raise `UnknownKeywordsError` when more than `most` of the keywords were unknown
        (None: any share is allowed)."""
        if most is None or not self.keywords or self.share() <= most:
            return
        hint = separator_hint(self.examples, separator)
        raise UnknownKeywordsError(self.unknown, self.keywords, self.examples, hint, most)
