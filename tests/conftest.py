"""Shared fixtures: the installed model directory, the shared face photos, fake clocks."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import structlog
from hypothesis import settings as hypothesis_settings

from foundation.clock import FakeClock

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

hypothesis_settings.register_profile("ci", max_examples=60, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def installed_model_dir() -> Path:
    """The model directory `make` installed into (read-only use)."""
    path = Path(os.environ.get("CONSENTGATE_MODEL_DIR", ROOT / ".models"))
    if not (path / "fr_feature.onnx").exists():
        pytest.fail(f"models are not installed in {path}: run `make test` (it installs them)")
    return path


@pytest.fixture
def tmp_model_dir(tmp_path: Path, installed_model_dir: Path) -> Path:
    """A private copy of the installed models, for tests that tamper with files."""
    target = tmp_path / "models"
    target.mkdir()
    for f in installed_model_dir.iterdir():
        if f.is_file():
            (target / f.name).write_bytes(f.read_bytes())
    return target


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the shared test data sits beside the project")
    return SHARED


@pytest.fixture(scope="session")
def faces_dir(shared_dir: Path) -> Path:
    return shared_dir / "faces"


@pytest.fixture(scope="session")
def face_identities(faces_dir: Path) -> dict[str, str]:
    """file name -> person id for the single-person photos in ../shared/faces."""
    with open(faces_dir / "identities.csv", newline="") as fh:
        return {row["file"]: row["identity"] for row in csv.DictReader(fh)}


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_structlog():
    """Each test starts from structlog's defaults: a CLI run in-process may have configured a
    level filter that would hide events from `structlog.testing.capture_logs` in later tests."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
