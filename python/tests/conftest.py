"""Shared fixtures: the shipped data (``../shared/data`` beside the repository, or
``$SPACER_DATA``) and the ``spacer`` command line (``$SPACER_BIN``, or the newest
``target/{release,debug}/spacer``). A test that cannot find them is skipped with the
reason, except under ``CI=true``, where it fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: nothing is skipped)")
    pytest.skip(f"skipped: {what}")


@pytest.fixture(scope="session")
def require():
    """``require(module)`` imports a module, or skips (fails under CI) when it is not
    installed."""
    import importlib

    def load(module: str):
        try:
            return importlib.import_module(module)
        except ImportError:
            _missing(f"{module} is not installed")

    return load


@pytest.fixture(scope="session")
def data() -> Path:
    d = Path(os.environ.get("SPACER_DATA", REPO.parent / "shared" / "data"))
    if not (d / "wosac" / "golden").is_dir():
        _missing(f"no shipped data at {d} (set SPACER_DATA)")
    return d


@pytest.fixture(scope="session")
def spacer_bin() -> Path:
    env = os.environ.get("SPACER_BIN")
    if env:
        p = Path(env)
        if not p.is_file():
            pytest.fail(f"SPACER_BIN={env} is not a file")
        return p
    found = [REPO / "target" / prof / "spacer" for prof in ("release", "debug")]
    found = [p for p in found if p.is_file()]
    if not found:
        _missing("no spacer binary (cargo build -p spacer-train --bin spacer, or set SPACER_BIN)")
    return max(found, key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="session")
def womd_scene(data):
    import spacer

    (scene,) = spacer.load_scenes(data / "womd" / "637f20cafde22ff8.tfrecord")
    return scene
