"""Shared fixtures. Tests that need real weights or video skip with a reason when
`../shared` is absent; CI has it and points SMARTTRACE_MODEL_DIR there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SMARTTRACE_SHARED_DIR", REPO_ROOT.parent / "shared"))
MODELS = SHARED / "models"
DATA = SHARED / "data"

# Point the product's model/data lookup at the shared folder unless the caller chose otherwise.
if MODELS.is_dir():
    os.environ.setdefault("SMARTTRACE_MODEL_DIR", str(MODELS))
if DATA.is_dir():
    os.environ.setdefault("SMARTTRACE_DATA_DIR", str(DATA))
os.environ.setdefault("SMARTTRACE_CACHE_DIR", str(REPO_ROOT / "runs" / ".test-cache"))


# CI sets SMARTTRACE_REQUIRE_DATA=1: there a missing shared file FAILS the tests that need it, so
# the real-data tests cannot be skipped silently. On a user's machine (unset) they skip with a reason.
REQUIRE_DATA = os.environ.get("SMARTTRACE_REQUIRE_DATA", "") not in ("", "0")


def need(*paths: Path) -> None:
    """Skip the calling test (fail it under SMARTTRACE_REQUIRE_DATA=1) unless every path exists."""
    missing = [str(path) for path in paths if not Path(path).exists()]
    if not missing:
        return
    message = f"needs {', '.join(missing)} (the shared models/data folder is absent)"
    if REQUIRE_DATA:
        pytest.fail(f"SMARTTRACE_REQUIRE_DATA=1 and a shared file is missing: {message}", pytrace=False)
    pytest.skip(message)


def _need(path: Path) -> Path:
    need(path)
    return path


@pytest.fixture
def pets_dir() -> Path:
    return _need(DATA / "PETS09-S2L1")


@pytest.fixture
def tud_campus_dir() -> Path:
    return _need(DATA / "TUD-Campus")


@pytest.fixture
def models_dir() -> Path:
    return _need(MODELS / "yolo11n-pose.pt").parent


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect API (SQLite) for flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
