"""Keyword vocabulary: normalisation, document frequencies and batch mapping to ids."""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .sparse import SparseBatch


def normalize_keyword(keyword: str) -> str:
    """NFC, case-folded, trimmed: the one canonical form of a keyword."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", keyword).casefold().strip())


def normalize_array(keywords: pa.Array) -> pa.Array:
    """Normalise a flat Arrow string array, vectorised.

    For pure-ASCII strings NFC is the identity and case folding equals lower-casing, so Arrow's
    kernels do the work; the rare non-ASCII strings go through `normalize_keyword` so that the
    result is identical to it (Arrow has no case-folding kernel).
    """
    keywords = pc.cast(keywords, pa.string())
    out = pc.utf8_trim_whitespace(pc.utf8_lower(keywords))
    is_ascii = pc.fill_null(pc.string_is_ascii(keywords), True)
    if pc.all(is_ascii).as_py():
        return out
    # Only the non-ASCII strings go through Python; the rest stay in Arrow.
    other = pc.invert(is_ascii)
    fixed = pa.array(
        [normalize_keyword(k) for k in keywords.filter(other).to_pylist()], pa.string()
    )
    return pc.replace_with_mask(out, other, fixed)


def _flatten(items: Sequence[Sequence[str]]) -> tuple[pa.Array, np.ndarray]:
    """Keyword lists to one flat Arrow array plus row pointers of shape (n_items + 1,)."""
    if isinstance(items, pa.ListArray | pa.LargeListArray | pa.ChunkedArray):
        lists = items.combine_chunks() if isinstance(items, pa.ChunkedArray) else items
        lists = pc.fill_null(lists, pa.scalar([], type=lists.type))
        return lists.flatten(), np.asarray(lists.offsets, dtype=np.int64) - lists.offsets[0].as_py()
    lengths = np.fromiter((len(k) for k in items), dtype=np.int64, count=len(items))
    indptr = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    flat = pa.array([k for keywords in items for k in keywords], type=pa.string())
    return flat, indptr


RAW_CACHE_SIZE = 1 << 18  # spellings remembered by `Vocabulary._lookup_raw`, about 30 MB at most


class _RawIds(dict[str, int]):
    """Raw spelling -> vocabulary id, filled on first sight; negative for an unknown keyword.

    A spelling is normalised once and remembered, up to RAW_CACHE_SIZE of them; past that,
    new ones are normalised on every sight, so that a stream of made-up keywords cannot grow
    memory without bound. An unknown spelling remembered gets the id -2 - k, its normalised
    form being `unknown[k]`, so that the traffic profile names it without normalising it again;
    one not remembered gets -1.
    """

    def __init__(self, index: dict[str, int]) -> None:
        super().__init__()
        self.index = index
        self.unknown: list[str] = []
        self._lock = threading.Lock()  # two lanes may meet a new spelling at once

    def __missing__(self, raw: str) -> int:
        normalised = normalize_keyword(raw)
        i = self.index.get(normalised, -1)
        with self._lock:
            if len(self) < RAW_CACHE_SIZE and raw not in self:
                if i < 0:
                    i = -2 - len(self.unknown)
                    self.unknown.append(normalised)
                self[raw] = i
            elif raw in self:
                i = self[raw]
        return i


@dataclass
class Vocabulary:
    """Keyword <-> id, with document frequencies.

    Build one with `Vocabulary.fit(items)`. Ids are ordered by document frequency (descending),
    ties broken alphabetically, so a vocabulary is deterministic for a given catalog.
    """

    keywords: list[str]
    document_frequency: np.ndarray  # (n_keywords,) int64
    n_documents: int
    min_df: int = 1
    max_size: int | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.document_frequency = np.asarray(self.document_frequency, dtype=np.int64)
        if len(self.keywords) != len(self.document_frequency):
            raise ValueError("keywords and document_frequency differ in length")
        self._index = {k: i for i, k in enumerate(self.keywords)}
        self._value_set = pa.array(self.keywords, type=pa.string())
        # Keyword exactly as a client sent it -> id (or -1): serving sees the same few thousand
        # spellings again and again, and one dict hit skips normalising each of them.
        self._raw_ids = _RawIds(self._index)

    def __len__(self) -> int:
        return len(self.keywords)

    def __contains__(self, keyword: str) -> bool:
        return normalize_keyword(keyword) in self._index

    def id(self, keyword: str) -> int | None:
        return self._index.get(normalize_keyword(keyword))

    @classmethod
    def fit(
        cls,
        items: Sequence[Sequence[str]],
        *,
        min_df: int = 3,
        max_size: int | None = None,
        max_df: float = 1.0,
        stop_keywords: Iterable[str] = (),
    ) -> Vocabulary:
        """Count document frequencies over `items` and keep keywords on >= `min_df` items.

        `max_df` (a share in (0, 1]) drops keywords on more than that share of the items;
        `stop_keywords` (normalised like every keyword) are dropped whatever their frequency:
        both for tags that describe the catalog rather than the item ("duringcreditsstinger").
        """
        if min_df < 1:
            raise ValueError(f"min_df must be >= 1, got {min_df}")
        if not 0.0 < max_df <= 1.0:
            raise ValueError(f"max_df must be in (0, 1], got {max_df}")
        if max_size is not None and max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        flat, indptr = _flatten(items)
        flat = normalize_array(flat)
        n = len(indptr) - 1
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        empty = (
            pc.equal(flat, "").to_numpy(zero_copy_only=False) if len(flat) else np.zeros(0, bool)
        )
        # One count per (item, keyword): a keyword repeated within an item is one document.
        table = pa.table({"row": rows[~empty], "kw": flat.filter(pa.array(~empty))})
        pairs = table.group_by(["row", "kw"]).aggregate([])
        counts = pairs.group_by("kw").aggregate([("row", "count")])
        kws = counts.column("kw").to_pylist()
        dfs = counts.column("row_count").to_numpy().astype(np.int64)
        order = sorted(range(len(kws)), key=lambda i: (-dfs[i], kws[i]))
        stop = {normalize_keyword(k) for k in stop_keywords}
        most = max_df * n  # a keyword on more than this many items is too common to tell apart
        stopped = sum(1 for k in kws if k in stop)
        too_common = sum(1 for i in range(len(kws)) if dfs[i] > most and kws[i] not in stop)
        keep = [i for i in order if min_df <= dfs[i] <= most and kws[i] not in stop]
        if max_size is not None:
            keep = keep[:max_size]
        kept = set(keep)
        dropped = [i for i in range(len(kws)) if i not in kept]
        stats = {
            "items": n,
            "keyword_occurrences": len(flat),
            "distinct_keywords": len(kws),
            "kept_keywords": len(keep),
            "pruned_keywords": len(dropped),
            "pruned_occurrences": int(dfs[dropped].sum()) if dropped else 0,
            "empty_keywords": int(empty.sum()),
            "items_without_kept_keyword": 0,
        }
        if stop or max_df < 1.0:  # only then: a vocabulary without them reads as before
            stats |= {"stopped_keywords": stopped, "too_common_keywords": too_common}
        vocab = cls(
            keywords=[kws[i] for i in keep],
            document_frequency=dfs[keep] if keep else np.zeros(0, np.int64),
            n_documents=n,
            min_df=min_df,
            max_size=max_size,
            stats=stats,
        )
        if n:
            vocab.stats["items_without_kept_keyword"] = int(
                (vocab.map_batch(items).known == 0).sum()
            )
        return vocab

    def map_batch(
        self,
        items: Sequence[Sequence[str]] | pa.ListArray,
        weights: Sequence[Sequence[float]] | None = None,
    ) -> SparseBatch:
        """Map keyword lists to a `SparseBatch` of known ids, counting the unknown ones.

        Weights default to 1.0; when given, there is one per keyword. A keyword repeated within
        an item is merged into one entry with the weights summed.
        """
        w = None
        if weights is not None:
            w = np.fromiter((x for ws in weights for x in ws), dtype=np.float32)
        if isinstance(items, pa.Array | pa.ChunkedArray):
            flat, indptr = _flatten(items)
            return self._bags(self._lookup(normalize_array(flat)), indptr, w)
        # Python lists (online requests): raw strings straight to the cache, no Arrow.
        counts = np.fromiter(map(len, items), np.int64, len(items))
        return self.map_flat([k for keywords in items for k in keywords], counts, w)

    def map_flat(
        self, keywords: list[str], counts: np.ndarray, weights: np.ndarray | None = None
    ) -> SparseBatch:
        """`map_batch` for keywords already in one flat list: item i has `counts[i]` of them.

        The form a batch of serving requests arrives in, with no per-item lists to build.
        """
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        if indptr[-1] != len(keywords):
            raise ValueError(
                f"counts add up to {indptr[-1]}, but there are {len(keywords)} keywords"
            )
        return self._bags(self._lookup_raw(keywords), indptr, weights)

    def map_ids(
        self, ids: np.ndarray, counts: np.ndarray, weights: np.ndarray | None = None
    ) -> SparseBatch:
        """`map_flat` for keywords already looked up (`lookup`: -1 where unknown), so that a
        caller that needs the ids too (the traffic profile's unknown keywords) looks up once."""
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        if indptr[-1] != len(ids):
            raise ValueError(f"counts add up to {indptr[-1]}, but there are {len(ids)} ids")
        return self._bags(np.asarray(ids, dtype=np.int64), indptr, weights)

    def lookup(self, keywords: list[str]) -> np.ndarray:
        """Vocabulary ids of keywords as sent (normalised here), negative where unknown (see
        `unknown_keywords`). Shape (n,), int64."""
        return self._lookup_raw(keywords)

    def unknown_keywords(
        self, keywords: Sequence[str], ids: np.ndarray, at: np.ndarray | None = None
    ) -> list[str]:
        """The normalised forms of the keywords whose `lookup` ids are negative (or of those
        at the positions `at`, all unknown), empty ones left out: one list index per keyword
        the lookup remembered, `normalize_keyword` for the others (past RAW_CACHE_SIZE)."""
        missing = np.flatnonzero(ids < 0) if at is None else at
        codes = ids[missing]
        remembered = codes <= -2
        forms = self._raw_ids.unknown
        out = list(map(forms.__getitem__, (-2 - codes[remembered]).tolist()))
        if not remembered.all():
            out += map(normalize_keyword, map(keywords.__getitem__, missing[~remembered].tolist()))
        return list(filter(None, out))

    def _bags(self, ids_np: np.ndarray, indptr: np.ndarray, w: np.ndarray | None) -> SparseBatch:
        """The batch for looked-up ids (-1: unknown) of items indptr[i]:indptr[i + 1]."""
        n = len(indptr) - 1
        known_mask = ids_np >= 0
        if w is None:
            w = np.ones(len(ids_np), dtype=np.float32)
        elif len(w) != len(ids_np):
            raise ValueError("weights must have one value per keyword")
        else:
            w = np.asarray(w, dtype=np.float32)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        unknown = np.diff(indptr) - np.bincount(rows[known_mask], minlength=n)
        rows, ids_np, w = rows[known_mask], ids_np[known_mask], w[known_mask]
        # A bag holds each keyword once: a repeat (or two spellings that normalise alike) adds
        # its weight to the first. Left repeated, |x|^2 would be a sum of squares instead of
        # the square of the sum, and the overlap could exceed 1.
        # Within an item, ids come out in ascending order, however the batch was cut.
        width = max(len(self), 1)
        key = rows * width + ids_np
        order = np.argsort(key, kind="stable")
        key = key[order]
        if len(key) > 1 and (key[1:] == key[:-1]).any():
            key, inverse = np.unique(key, return_inverse=True)
            w = np.bincount(inverse, weights=w[order], minlength=len(key)).astype(np.float32)
        else:  # the usual case, no repeats: a sort is all it takes
            w = w[order]
        rows, ids_np = np.divmod(key, width)
        new_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=new_indptr[1:])
        return SparseBatch(indices=ids_np, weights=w, indptr=new_indptr, unknown=unknown)

    def _lookup_raw(self, keywords: list[str]) -> np.ndarray:
        """Vocabulary ids of keywords as sent (not yet normalised), negative where unknown.

        One C-level dict probe per keyword once a spelling has been seen, straight into numpy;
        only a new spelling calls back into Python (`_RawIds.__missing__`).
        """
        return np.fromiter(map(self._raw_ids.__getitem__, keywords), np.int64, len(keywords))

    def _lookup(self, keywords: pa.Array) -> np.ndarray:
        """Vocabulary ids of normalised keywords, -1 where unknown. Shape (n,), int64.

        Arrow's `index_in` hashes the whole vocabulary on every call (about 300 us for 10,000
        keywords) and then looks up in C; a dict lookup costs about 0.1 us per keyword. So small
        batches, such as one online request, use the dict and large ones use Arrow: measured on
        TMDB (9,810 keywords), 2 us against 313 us for 21 keywords, 5.5 ms against 58 ms for
        379,000.
        """
        if len(keywords) * 3 < len(self):
            index = self._index
            return np.fromiter(
                (index.get(k, -1) for k in keywords.to_pylist()),
                dtype=np.int64,
                count=len(keywords),
            )
        ids = pc.index_in(keywords, value_set=self._value_set)
        return pc.fill_null(ids, -1).to_numpy(zero_copy_only=False).astype(np.int64)

    # -- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "keywords": self.keywords,
            "document_frequency": self.document_frequency.tolist(),
            "n_documents": self.n_documents,
            "min_df": self.min_df,
            "max_size": self.max_size,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        return cls(
            keywords=list(data["keywords"]),
            document_frequency=np.asarray(data["document_frequency"], dtype=np.int64),
            n_documents=int(data["n_documents"]),
            min_df=int(data.get("min_df", 1)),
            max_size=data.get("max_size"),
            stats=dict(data.get("stats", {})),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_keywords(cls, keywords: Iterable[str]) -> Vocabulary:
        """A vocabulary over given keywords (already unique), each with frequency 1."""
        kws = [normalize_keyword(k) for k in keywords]
        return cls(keywords=kws, document_frequency=np.ones(len(kws), np.int64), n_documents=0)
