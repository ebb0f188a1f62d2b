"""Carry this machine's pip configuration into a container build.

Prints, for `deploy/image/build.sh`, one pip.conf that holds the effective settings of this
machine's pip (its configuration files and PIP_* variables together, as `pip config list`
resolves them) and the local paths those settings name, which the build mounts read-only at
the same place: find-links folders, file:// indexes (with the folder above `simple/`, which
their pages link into), the CA bundle, constraint files.

Usage: python pip_context.py PIP_CONF_OUT  ->  one mount source per line on stdout.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

# Settings whose values are paths or URLs that may point at this machine's disk.
PATH_KEYS = {"cert", "client-cert", "constraint", "requirement", "build-constraint"}
URL_KEYS = {"find-links", "index-url", "extra-index-url"}
# Settings that make no sense inside the build (the Dockerfile sets its own cache policy).
SKIPPED_KEYS = {"cache-dir", "target", "prefix", "root", "user", "src"}


def effective_settings(python: str) -> dict[tuple[str, str], str]:
    """(section, key) -> value, variables winning over files as pip itself resolves them."""
    listing = subprocess.run(
        [python, "-m", "pip", "config", "list"], check=True, capture_output=True, text=True
    ).stdout
    files: dict[tuple[str, str], str] = {}
    env: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        name, sep, raw = line.partition("=")
        if not sep:
            continue
        value = " ".join(shlex.split(raw))
        if name.startswith(":env:."):
            env[("global", name.removeprefix(":env:."))] = value
        else:
            section, _, key = name.partition(".")
            files[(section, key)] = value
    files.update(env)
    return {k: v for k, v in files.items() if k[1] not in SKIPPED_KEYS}


def local_path(value: str) -> Path | None:
    if "://" in value:
        parsed = urlparse(value)
        return Path(unquote(parsed.path)) if parsed.scheme == "file" else None
    return Path(value)


def mount_sources(settings: dict[tuple[str, str], str]) -> list[Path]:
    sources: set[Path] = set()
    for (_, key), value in settings.items():
        if key not in PATH_KEYS | URL_KEYS:
            continue
        for item in value.split():
            path = local_path(item)
            if path is None or not path.exists():
                continue
            # Not resolved: the build mounts each path where the configuration names it.
            path = Path(os.path.abspath(path))
            # A PEP 503 index's pages link to ../../files/...: mount the folder above simple/.
            if key in URL_KEYS and path.name == "simple":
                path = path.parent
            sources.add(path)
    # Nested paths are already covered by their parent's mount.
    return sorted(p for p in sources if not any(q != p and q in p.parents for q in sources))


def main() -> None:
    out = Path(sys.argv[1])
    python = sys.argv[2] if len(sys.argv) > 2 else sys.executable
    settings = effective_settings(python)
    sections: dict[str, list[str]] = {}
    for (section, key), value in sorted(settings.items()):
        sections.setdefault(section, []).append(f"{key} = {value}")
    out.write_text(
        "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())
    )
    for path in mount_sources(settings):
        print(path)


if __name__ == "__main__":
    main()
