"""Shared fixtures: the installed model directory, the shared face photos, fake clocks, a
ZeroMQ context that must terminate, a throwaway PostgreSQL cluster (`cluster`, `dsn`), and the
kiosk's (store, engine, app, live server, a live `both`-mode gate).

Plain helpers (no fixtures) are in tests/helpers/; no test module imports another.
"""

from __future__ import annotations

import csv
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import zmq
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


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    """A private ZeroMQ context that must terminate promptly: a socket left open fails the test."""
    context = zmq.Context()
    yield context
    t = threading.Thread(target=context.term, daemon=True)
    t.start()
    t.join(3)
    assert not t.is_alive(), "a ZeroMQ socket was left open"


# -- central on PostgreSQL (central.pg_cluster; imported when a PostgreSQL test runs) ------------
@pytest.fixture(scope="module")
def cluster():
    """A throwaway PostgreSQL cluster for one test module; skips where none can run."""
    from central.pg_cluster import PgCluster, PgUnavailable, find_bindir

    if find_bindir() is None:
        pytest.skip("PostgreSQL's server is not installed and could not be: run `make postgres` "
                    "(Debian: apt-get install -y postgresql)")
    try:
        pg = PgCluster(fsync=False).start()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL is installed but cannot start here: {exc}")
    yield pg
    pg.stop()


@pytest.fixture
def dsn(cluster) -> str:
    """A fresh database on the module's cluster, for one test."""
    return cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")


# -- the kiosk's (tests/helpers/kiosk.py builds the app; imported when a kiosk test runs) --------
@pytest.fixture(scope="session")
def kiosk_engine(installed_model_dir: Path):
    from edge.vision.engine import FaceEngine
    from foundation.settings import Settings

    settings = Settings.model_validate({"vision": {"model_dir": str(installed_model_dir)}})
    return FaceEngine.from_settings(settings.vision)


@pytest.fixture
def store(tmp_path: Path, fake_clock: FakeClock):
    """A new consent store in tmp_path (store.db, keys/) on the fake clock."""
    from edge.consent.keys import write_key_file
    from edge.consent.store import ConsentStore

    keys = tmp_path / "keys"
    write_key_file(keys / "store.key")
    write_key_file(keys / "ref.key")
    opened = ConsentStore.open(tmp_path / "store.db", keys / "store.key", keys / "ref.key",
                               fake_clock, create=True)
    yield opened
    opened.close()


@pytest.fixture
def kiosk_store(store):
    from helpers.kiosk import STAFF, password_hash

    for name, role in STAFF.items():
        store.staff.upsert(name, role, password_hash())
    return store


@pytest.fixture
def kiosk(kiosk_store, kiosk_engine, fake_clock):
    """A KioskEnv: the kiosk app on the store and engine, behind a TestClient."""
    from helpers.kiosk import make_env

    env = make_env(kiosk_store, kiosk_engine, fake_clock)
    with env.client:
        yield env


@pytest.fixture
def live_kiosk(kiosk_store, kiosk_engine, fake_clock):
    """(KioskEnv, LiveServer): the app on a real socket (SSE and browser tests)."""
    from helpers.kiosk import LiveServer, make_env

    from foundation.peers import free_port

    port = free_port()  # the settings name the port, so the page's Origin is the kiosk's
    env = make_env(kiosk_store, kiosk_engine, fake_clock, port=port)
    with LiveServer(env.client.app, port=port) as server:
        yield env, server


@pytest.fixture
def both_gate(kiosk_store, kiosk_engine, fake_clock):
    """(KioskEnv, LiveServer): a live kiosk on a gate in `both` matching mode (token or gallery,
    the lane board's scanner field on), with its TokenGate."""
    from helpers.kiosk import LiveServer, make_env

    from edge.decisions.token_setup import TokenGate
    from foundation.peers import free_port
    from foundation.settings import Settings

    port = free_port()
    settings = Settings.model_validate({
        "kiosk": {"port": port},
        "lanes": {"lanes": [{"lane_id": "A", "zone": [(0, 0), (0.02, 0), (0.02, 0.02)]}]},
        "matching": {"mode": "both", "kiosk_scan": True}})
    env = make_env(kiosk_store, kiosk_engine, fake_clock, settings)
    env.services.tokens = TokenGate.from_settings(settings, kiosk_store, fake_clock, None,
                                                  lambda: None)
    with LiveServer(env.client.app, port=port) as server:
        yield env, server
    env.services.tokens.close()
