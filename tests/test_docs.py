"""The user-facing docs hold together: links resolve, the README stays a first-hour page.

Reads README.md and docs/*.md as text (no network, no build): every relative link names a file
that exists and, for a Markdown target with a #fragment, a heading of that file; the README is
under 300 lines and links every docs page; no page a user reads names our tracker's issues.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOC_PAGES]

# [text](target) outside code; images too. Targets with a scheme are external and not checked.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
# Our tracker's issue numbers: "issue 16", "issues 2 and 3", "#16". Not "grpc/grpc#41785"
# inside a URL (checked on text with the URLs removed).
ISSUE = re.compile(r"\bissues? \d|(?<![\w/&])#\d", re.IGNORECASE)
URL = re.compile(r"https?://\S+")


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|_(?=\w)|(?<=\w)_", "", heading.strip()).lower()
    kept = "".join(
        c for c in text if c in " -_" or unicodedata.category(c)[0] in ("L", "N")
    )
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for _, line in _prose(path):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = _slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in _prose(path):
        line = re.sub(r"`[^`]*`", "", line)  # a link inside inline code is not a link
        found += [(number, m.group(1)) for m in LINK.finditer(line)]
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for number, target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"line {number}: {target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
            broken.append(f"line {number}: {target} (no heading #{fragment})")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_readme_is_short_and_links_every_docs_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 300, f"README.md has {len(lines)} lines; move detail to docs/"
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in _links(README)}
    missing = [p.name for p in DOC_PAGES if p.resolve() not in linked]
    assert not missing, f"README.md does not link docs/{', docs/'.join(missing)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_issue_numbers(page: Path) -> None:
    hits = [
        f"line {n}: {line.strip()[:80]}"
        for n, line in _prose(page)
        if ISSUE.search(URL.sub("", line))
    ]
    assert not hits, f"{page.name} names tracker issues: " + "; ".join(hits)
