"""Where catalogs and outputs live: local paths or URIs (s3://, gs://, hdfs://, file://).

A URI becomes a pyarrow filesystem through `pyarrow.fs.FileSystem.from_uri`, which takes its
credentials from each store's standard environment and configuration: for S3 the AWS variables,
`~/.aws/credentials` and `AWS_PROFILE`, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for an
S3-compatible server; for GCS `GOOGLE_APPLICATION_CREDENTIALS`; for HDFS `HADOOP_HOME` and
`CLASSPATH`. A scheme pyarrow has no filesystem for goes through fsspec, when the package that
implements it is installed. Errors from the store become a `StorageError` that says what to fix.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from topicproj.models.errors import StorageError

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")

# Phrases in the stores' own error messages (pyarrow's S3 and GCS clients, fsspec's) and what
# the user should be told for each; the first that matches wins.
_REASONS = (
    (("NO_SUCH_BUCKET", "NoSuchBucket", "bucket does not exist", "Bucket '"), "no such bucket"),
    (
        (
            "ACCESS_DENIED",
            "AccessDenied",
            "SIGNATURE_DOES_NOT_MATCH",
            "INVALID_ACCESS_KEY_ID",
            "InvalidAccessKeyId",
            "Forbidden",
            "403",
            "PermissionDenied",
        ),
        "access denied: check the credentials (for S3: AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE; for GCS: GOOGLE_APPLICATION_CREDENTIALS)",
    ),
    (("NETWORK_CONNECTION", "Couldn't connect", "Connection refused"), "cannot reach the store"),
)


def is_uri(spec: str | Path) -> bool:
    return isinstance(spec, str) and _SCHEME.match(spec) is not None


@dataclass(frozen=True)
class Location:
    """A file or directory: its filesystem, its path there, and the name the user gave it."""

    filesystem: pafs.FileSystem
    path: str
    uri: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def child(self, name: str) -> Location:
        return Location(
            self.filesystem, f"{self.path.rstrip('/')}/{name}", f"{self.uri.rstrip('/')}/{name}"
        )

    def info(self) -> pafs.FileInfo:
        with storage_errors(self.uri):
            return self.filesystem.get_file_info(self.path)

    def exists(self) -> bool:
        return self.info().type != pafs.FileType.NotFound


def locate(spec: str | Path) -> Location:
    """The filesystem and path of a local path or a URI."""
    text = str(spec)
    match = _SCHEME.match(text) if isinstance(spec, str) else None
    if match is None:
        return Location(pafs.LocalFileSystem(), str(Path(text).absolute()), text)
    scheme = match.group(1).lower()
    if scheme == "file":
        return Location(pafs.LocalFileSystem(), text[len("file://") :] or "/", text)
    try:
        with storage_errors(text):
            filesystem, path = pafs.FileSystem.from_uri(text)
    except StorageError as e:
        if "Unrecognized filesystem type" not in e.reason and "not built" not in e.reason:
            raise
        return _fsspec_location(text, scheme)
    return Location(filesystem, path, text)


def _fsspec_location(text: str, scheme: str) -> Location:
    """A scheme pyarrow does not build in, through fsspec's implementation of it."""
    try:
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs = fsspec.filesystem(scheme)
    except (ImportError, ValueError) as e:
        raise StorageError(
            text, f"no filesystem for {scheme}:// ({e}); install the fsspec package for it"
        ) from None
    return Location(PyFileSystem(FSSpecHandler(fs)), fs._strip_protocol(text), text)


@contextmanager
def storage_errors(uri: str) -> Iterator[None]:
    """Turn the store's OSError (or Arrow error) into a StorageError naming `uri` and the fix."""
    try:
        yield
    except StorageError:
        raise
    except (OSError, pa.ArrowException) as e:
        if isinstance(e, FileNotFoundError | IsADirectoryError | NotADirectoryError):
            raise
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        reason = next((r for keys, r in _REASONS if any(k in text for k in keys)), None)
        raise StorageError(uri, f"{reason} ({text})" if reason else text) from None


def expand(spec: str | Path, suffixes: tuple[str, ...]) -> list[str]:
    """A file, a directory (its files ending in one of `suffixes`, sorted) or a glob pattern,
    as a sorted list of paths or URIs in the form the user wrote them."""
    text = str(spec)
    loc = locate(text)
    wildcard = re.search(r"[*?\[]", loc.path)
    with storage_errors(text):
        if wildcard:
            base = loc.path[: wildcard.start()].rsplit("/", 1)[0]
            selector = pafs.FileSelector(base, recursive="**" in loc.path, allow_not_found=True)
            infos = loc.filesystem.get_file_info(selector)
            pattern = loc.path.replace("**/", "*")
            found = sorted(i.path for i in infos if i.is_file and fnmatch.fnmatch(i.path, pattern))
        elif loc.info().type == pafs.FileType.Directory:
            infos = loc.filesystem.get_file_info(pafs.FileSelector(loc.path))
            found = sorted(i.path for i in infos if i.is_file and i.path.lower().endswith(suffixes))
        else:
            return [text]
    return [_as_given(text, loc, p) for p in found]


def _as_given(spec: str, loc: Location, path: str) -> str:
    """`path` (a filesystem path under `loc`) spelt like `spec`: a URI stays a URI."""
    if not is_uri(spec):
        return path
    scheme = _SCHEME.match(spec).group(0)  # type: ignore[union-attr]
    return scheme + path if scheme != "file://" else "file://" + path
