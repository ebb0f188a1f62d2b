"""What `make image` carries of this machine's pip into the build: every setting, variables
winning over files, and each local path it names, mounted once."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "image" / "pip_context.py"


def _run(tmp_path: Path, env: dict[str, str]) -> tuple[str, list[str]]:
    out = tmp_path / "out.conf"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.read_text(), result.stdout.split()


def test_settings_and_local_paths_are_carried(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    index = tmp_path / "mirror" / "simple"
    wheels.mkdir()
    index.mkdir(parents=True)
    (tmp_path / "mirror" / "files").mkdir()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2.14.1\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\n"
        f"constraint = {constraints}\n"
        f"extra-index-url = file://{index} https://example.invalid/simple\n"
        "default-timeout = 10\n"
        "cache-dir = /somewhere\n"
        "[install]\n"
        "no-compile = false\n"
    )
    written, mounts = _run(
        tmp_path,
        # A variable overrides the file, as pip itself resolves them.
        {"PIP_CONFIG_FILE": str(conf), "PIP_FIND_LINKS": str(wheels), "PIP_DEFAULT_TIMEOUT": "99"},
    )
    assert f"find-links = {wheels}" in written
    assert "default-timeout = 99" in written and "default-timeout = 10" not in written
    assert f"extra-index-url = file://{index} https://example.invalid/simple" in written
    assert "[install]\nno-compile = false" in written
    assert "cache-dir" not in written  # the Dockerfile sets its own cache policy
    # The index's pages link to ../../files: its parent is mounted, not simple/ alone.
    assert str(index.parent) in mounts and str(index) not in mounts
    assert str(wheels) in mounts and str(constraints) in mounts


def test_nested_paths_are_mounted_once(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("pip_context", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "a" / "b").mkdir(parents=True)
    settings = {
        ("global", "find-links"): f"{tmp_path / 'a'} {tmp_path / 'a' / 'b'} /does/not/exist",
        ("global", "index-url"): "https://pypi.org/simple",
    }
    assert module.mount_sources(settings) == [tmp_path / "a"]
