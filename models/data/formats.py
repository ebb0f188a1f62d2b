"""The catalog formats topicproj reads: a constant that costs no import of pyarrow."""

from __future__ import annotations

FORMATS = ("csv", "tmdb", "jsonl", "json", "parquet")
