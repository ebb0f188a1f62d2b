"""The installed topicproj's version, for --version, metrics and the inference protocol."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("topicproj")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
