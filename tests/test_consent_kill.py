"""Crash safety: a child process SIGKILLed in the middle of an enrolment burst leaves a store
that opens, passes integrity checks and holds whole enrolments only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from edge.consent import opening
from edge.consent.keys import read_key_file, write_key_file
from edge.consent.store import ConsentStore
from foundation.clock import SystemClock

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from pathlib import Path
    from foundation.clock import SystemClock
    from edge.consent.store import ConsentStore
    from foundation.logs import configure_logging
    configure_logging("warning", stream=sys.stderr)
    d = Path(sys.argv[1])
    store = ConsentStore.open(d / "store.db", d / "store.key", d / "ref.key", SystemClock())
    rng = np.random.default_rng(int(sys.argv[2]))
    clock = SystemClock()
    i = 0
    while True:
        c = store.grant_consent(f"K{sys.argv[2]}X{i}", "boarding", "XY1", clock.now() + 3600,
                                "child")
        store.enrol(c.consent_id, list(rng.standard_normal((3, 512))), "fr_feature", "child",
                    strategy="each")
        print(i, flush=True)
        i += 1
""")

TEMPLATES_PER_ENROLMENT = 3


@pytest.mark.slow
def test_sigkill_during_enrolment_burst_leaves_whole_enrolments(tmp_path):
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    ConsentStore.open(tmp_path / "store.db", tmp_path / "store.key", tmp_path / "ref.key",
                      SystemClock(), create=True).close()
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    rng = np.random.default_rng(1)
    for round_ in range(3):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(round_)],
                                 stdout=subprocess.PIPE, env=env)
        try:
            for _ in range(10):  # let it get going
                line = child.stdout.readline()
                assert line.strip().isdigit(), "child died before enrolling"
            time.sleep(float(rng.uniform(0, 0.05)))
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        assert child.returncode == -signal.SIGKILL

        store = ConsentStore.open(tmp_path / "store.db", tmp_path / "store.key",
                                  tmp_path / "ref.key", SystemClock())
        try:
            conn = opening.connect(store.path, read_key_file(tmp_path / "store.key"))
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA cipher_integrity_check").fetchall() == []
            per_consent = conn.execute(
                "SELECT consent_id, count(*) FROM templates GROUP BY consent_id").fetchall()
            enrolled_events = conn.execute(
                "SELECT count(*) FROM audit WHERE event = 'enrolled'").fetchone()[0]
            conn.close()
            assert len(per_consent) >= 10 * (round_ + 1)
            assert all(n == TEMPLATES_PER_ENROLMENT for _, n in per_consent)
            assert enrolled_events == len(per_consent)
            for row in store.active_templates():
                assert abs(float(np.linalg.norm(row.vector)) - 1.0) < 1e-5
            assert store.audit_log.verify() == store.stats()["audit_rows"]
        finally:
            store.close()


# -- half-done enrolments: consents a kill left without a template ------------------------------
def _open(tmp_path, clock, **kw) -> ConsentStore:
    return ConsentStore.open(tmp_path / "store.db", tmp_path / "store.key",
                             tmp_path / "ref.key", clock, **kw)


def _orphans(store: ConsentStore) -> list[str]:
    """Live consents without any template that were never enrolled (what a killed
    grant-then-enrol leaves: no receipt was given for them)."""
    return [r[0] for r in store.db.read(
        "SELECT consent_id FROM consents c WHERE withdrawn_at IS NULL AND boarded_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM templates t WHERE t.consent_id = c.consent_id) "
        "AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.event = 'enrolled' AND "
        "a.subject = c.consent_id) ORDER BY granted_at, consent_id")]


def test_orphan_consents_are_repaired_at_open(tmp_path):
    from foundation.clock import FakeClock

    clock = FakeClock()
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    rng = np.random.default_rng(3)
    store = _open(tmp_path, clock, create=True)
    enrolled = store.grant_consent("ENR001", "boarding", "XY1", clock.now() + 3600, "agent1")
    store.enrol(enrolled.consent_id, [rng.standard_normal(512)], "fr_feature", "agent1")
    withdrawn = store.grant_consent("WDR001", "boarding", "XY1", clock.now() + 3600, "agent1")
    store.enrol(withdrawn.consent_id, [rng.standard_normal(512)], "fr_feature", "agent1")
    store.withdraw(consent_id=withdrawn.consent_id, actor="agent1")
    # enrolled, then its templates went (e.g. purged): the traveller holds a receipt
    aged = store.grant_consent("AGE001", "boarding", "XY1", clock.now() + 3600, "agent1")
    store.enrol(aged.consent_id, [rng.standard_normal(512)], "fr_feature", "agent1")
    with store.db.write() as conn:
        conn.execute("DELETE FROM templates WHERE consent_id = ?", (aged.consent_id,))
    # granted, then the process died before the enrolment: no template, no receipt
    killed = [store.grant_consent(f"KIL00{i}", "boarding", "XY1", clock.now() + 3600,
                                  "agent1") for i in range(3)]
    store.db.close()  # as a kill leaves it (no close() audit, no purge)
    clock.advance(store.orphan_grace_s - 5)
    store = _open(tmp_path, clock)  # inside the grace period: nothing is removed yet
    assert len(_orphans(store)) == 3
    in_flight = store.grant_consent("FLY001", "boarding", "XY1", clock.now() + 3600, "agent1")
    store.db.close()

    clock.advance(10)
    store = _open(tmp_path, clock)
    try:
        assert _orphans(store) == [in_flight.consent_id]  # the young one waits for its grace
        left = {r[0] for r in store.db.read("SELECT consent_id FROM consents")}
        assert {enrolled.consent_id, withdrawn.consent_id, aged.consent_id} <= left
        assert not {c.consent_id for c in killed} & left
        rows = store.db.read("SELECT actor, subject, reason FROM audit WHERE "
                             "event = 'orphan_consents_removed'")
        assert len(rows) == 1
        actor, subject, reason = rows[0]
        assert (actor, subject) == ("system", None)
        count, ids = reason.split(" ")
        assert count == "count=3"
        assert set(ids.removeprefix("ids=").split(",")) == {c.consent_id for c in killed}
        assert "KIL" not in reason  # ids and a count only, never a reference
        assert store.audit_log.verify() == store.stats()["audit_rows"]
        clock.advance(store.orphan_grace_s)
        store.purge()  # the periodic purge repairs too
        assert _orphans(store) == []
    finally:
        store.close()


def test_kiosk_enrol_undoes_its_consent_when_enrolment_fails(tmp_path):
    from structlog.testing import capture_logs

    from edge.kiosk.store_ops import grant_and_enrol
    from foundation.clock import FakeClock

    class Failing:
        """A store whose enrolment fails unexpectedly (and, with `undo_fails`, its undo)."""

        def __init__(self, store: ConsentStore, undo_fails: bool = False) -> None:
            self.store, self.undo_fails = store, undo_fails

        def grant_consent(self, *a, **kw):
            return self.store.grant_consent(*a, **kw)

        def enrol(self, *a, **kw):
            raise RuntimeError("the embedder blew up")

        def withdraw(self, **kw):
            if self.undo_fails:
                raise OSError("disk gone")
            return self.store.withdraw(**kw)

    clock = FakeClock()
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    store = _open(tmp_path, clock, create=True)
    args = dict(purpose="boarding", scope="XY1", expires_at=clock.now() + 3600,
                embeddings=[np.ones(512)], model_name="fr_feature", actor="agent1")
    with pytest.raises(RuntimeError):
        grant_and_enrol(Failing(store), reference="UND001", **args)
    assert _orphans(store) == []  # undone: withdrawn at once
    with capture_logs() as logs, pytest.raises(RuntimeError):
        grant_and_enrol(Failing(store, undo_fails=True), reference="UND002", **args)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["kiosk_enrol_undo_failed"]
    assert len(_orphans(store)) == 1
    store.close()
    clock.advance(store.orphan_grace_s + 1)
    store = _open(tmp_path, clock)  # what the undo could not do, the next open does
    assert _orphans(store) == []
    store.close()


KILLS = 4
CLIENTS = 4

# The kiosk as the daemon serves it (its app on uvicorn, the real store and face engine), alone
# in a process: what a kill interrupts is the kiosk's grant-then-enrol.
KIOSK = textwrap.dedent("""
    import sys
    import uvicorn
    from edge.consent.store import ConsentStore
    from edge.kiosk.app import create_app
    from edge.kiosk.board import LaneBoard
    from edge.kiosk.serving import uvicorn_kwargs
    from edge.kiosk.services import KioskServices
    from edge.vision.engine import FaceEngine
    from foundation.clock import SystemClock
    from foundation.logs import configure_logging
    from foundation.settings import load_settings
    settings = load_settings(sys.argv[1])
    configure_logging("info", json_logs=True)
    clock = SystemClock()
    store = ConsentStore.from_settings(settings, clock)
    engine = FaceEngine.from_settings(settings.vision)
    board = LaneBoard([lane.lane_id for lane in settings.lanes.lanes], clock)
    app = create_app(KioskServices(settings=settings, clock=clock, store=store, engine=engine,
                                   board=board))
    uvicorn.run(app, **uvicorn_kwargs(settings.kiosk))
""")


def _photo_b64(faces_dir) -> str:
    import base64

    import cv2

    image = cv2.imread(str(faces_dir / "img1.jpg"))
    scale = 800 / max(image.shape[:2])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode()


@pytest.mark.slow
@pytest.mark.integration
def test_kill9_enrolment_loop_leaves_no_orphans(tmp_path, installed_model_dir, faces_dir):
    """A real kiosk process (the daemon's kiosk app on uvicorn, the real store and engine) on a
    free port takes enrolments from 4 clients at once and is SIGKILLed several times
    mid-stream, then restarted: every receipted enrolment is there at the end, and no consent
    is left without its template."""
    import random
    import threading
    from pathlib import Path

    import httpx
    from helpers.devices import daemon_device
    from helpers.kiosk import PASSWORD, password_hash

    from foundation.peers import Peer, wait_for
    from foundation.settings import load_settings

    root = Path(__file__).resolve().parents[1]
    settings_file, port = daemon_device(tmp_path, installed_model_dir,
                                        consent={"orphan_grace_s": 1.0, "purge_interval_s": 2})
    settings = load_settings(settings_file)
    with ConsentStore.from_settings(settings, SystemClock()) as store:
        for i in range(CLIENTS):
            store.staff.upsert(f"agent{i}", "agent", password_hash())
    base = f"http://127.0.0.1:{port}"
    photo = _photo_b64(faces_dir)

    def up() -> bool:
        try:
            return httpx.get(base + "/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    kiosk = Peer("kiosk", [sys.executable, "-c", KIOSK, str(settings_file)],
                 tmp_path / "kiosk.log", cwd=root, ready=up, ready_timeout_s=180)
    lock = threading.Lock()
    receipts: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def client(n: int) -> None:
        http: httpx.Client | None = None
        version, seq = "", 0
        while not stop.is_set():
            try:
                if http is None:
                    http = httpx.Client(base_url=base, timeout=60, headers={"Origin": base})
                    r = http.post("/api/session/login",
                                  json={"staff_id": f"agent{n}", "password": PASSWORD})
                    r.raise_for_status()
                    http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
                    version = http.get("/api/consent-text").json()["version"]
                ref = f"K{n}{seq:04d}"
                seq += 1
                r = http.post("/api/enrolments", json={
                    "reference": ref, "consent_accepted": True, "consent_version": version,
                    "photo": photo})
                if r.status_code == 201:
                    with lock:
                        receipts.append(ref)
                elif r.status_code == 401:  # a restarted kiosk forgot the session
                    http.close()
                    http = None
                else:
                    with lock:
                        refused.append(r.status_code)
            except (httpx.HTTPError, ValueError):  # killed mid-request, or not up yet
                if http is not None:
                    http.close()
                    http = None
                stop.wait(0.2)
        if http is not None:
            http.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    rng = random.Random(13)
    try:
        kiosk.start()
        for t in threads:
            t.start()
        for _ in range(KILLS):
            before = len(receipts)
            wait_for(lambda b=before: len(receipts) >= b + 2 * CLIENTS, 300,
                     "enrolments between kills", peers=[kiosk])
            time.sleep(rng.uniform(0, 0.3))
            kiosk.kill()  # SIGKILL, mid-enrolment
            assert kiosk.returncode == -signal.SIGKILL
            kiosk.start()
        before = len(receipts)
        wait_for(lambda: len(receipts) >= before + CLIENTS, 300, "enrolments after the last "
                 "restart", peers=[kiosk])
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        kiosk.stop(30)
    assert not [s for s in refused if s >= 500], refused
    time.sleep(settings.consent.orphan_grace_s + 0.2)

    with ConsentStore.from_settings(settings, SystemClock()) as store:  # repairs at open
        assert _orphans(store) == []
        for ref in receipts:  # every receipted enrolment is whole and live
            rows = store.db.read(
                "SELECT count(*) FROM consents c JOIN templates t ON t.consent_id = "
                "c.consent_id WHERE c.ref_hash = ? AND c.withdrawn_at IS NULL",
                (store._ref_hash(ref),))
            assert rows[0][0] >= 1, ref
        conn = opening.connect(store.path, read_key_file(settings.store_key_file))
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
        assert store.audit_log.verify() == store.stats()["audit_rows"]
        assert len(receipts) >= KILLS * 2 * CLIENTS
