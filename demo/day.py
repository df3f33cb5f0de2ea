"""`python -m edge demo`: the whole appliance on a scripted day, on embedded defaults.

Provisions a throwaway device in a temp folder (provisioning's own `init_device`), starts the
gate controller on the simulated gate and a local telemetry collector as real processes on
loopback, and runs the daemon on the synthetic scene (visible + thermal). Then it plays a day:

1. a traveller consents at the kiosk, is enrolled, walks up and boards (the gate opens; the
   passage marks them boarded and deletes the template);
2. a traveller with a fever reading is enrolled at the kiosk, walks up: a `refer` alert
   without identity (boarding is not blocked unless settings say so);
3. a traveller who never consented is sent to the staffed lane and leaves no record;
4. a traveller enrols at the kiosk, withdraws there with the receipt's code, and is then not
   matched;
5. a traveller's consent expires before they reach the gate: not matched.

Enrolment and withdrawal go through the kiosk's own HTTP API, as the agent's page does
(logged-in session, CSRF header, same-origin `Origin`, photo as base64 JSON): consent text,
photo check, enrolment, receipt, withdrawal by code. Only step 5 writes to the store directly:
the kiosk always grants `kiosk.consent_ttl_s` (at least a minute), too long to watch expire, so
the demo grants a 2-second consent itself and says so. Every API response is kept under
`api/` for the privacy scan (the receipt's withdrawal code is redacted there: it is shown once
to the traveller and kept only in memory).

It prints a live line per event and at the end the outcomes and the counts the collector
received. Faces: scikit-image's astronaut by default (the same photo plays every role; each
role's store state differs), or `--faces DIR` for other people (one photo per identity when
DIR has an identities.csv). The demo device uses k = 1 so single events are visible at the
collector; a provisioned device defaults to k = 5.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import queue
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.decisions.events import DecisionEvent, Kind
from foundation.clock import SystemClock
from foundation.errors import ConsentGateError
from foundation.logs import configure_logging
from foundation.settings import default_model_dir

ROOT = Path(__file__).resolve().parents[1]
ZONE = [(200.0, 90.0), (440.0, 90.0), (440.0, 420.0), (200.0, 420.0)]
FEVER_C = 39.2
NORMAL_C = 36.6
DECISIONS = {Kind.GRANTED, Kind.NOT_MATCHED, Kind.MATCHED_HELD}
# what the live summary says for each decision and gallery reason (plain words, no ids)
SAY = {Kind.GRANTED: "granted: face matched an opted-in traveller, gate opens",
       Kind.NOT_MATCHED: "not matched: sent to the staffed lane",
       Kind.MATCHED_HELD: "matched, but held for secondary screening",
       Kind.THERMAL_PASS: "temperature normal",
       Kind.REFERRED: "REFER: staff alert for secondary screening (no identity attached)",
       Kind.UNRELIABLE: "temperature reading unusable"}
REASONS = {"empty": "no opted-in template on file", "below_threshold": "no template close enough",
           "ambiguous": "two templates too close to call"}
THERMAL = {Kind.THERMAL_PASS, Kind.REFERRED, Kind.UNRELIABLE}


class DemoError(ConsentGateError):
    """The demo could not set itself up (ports, processes, photos)."""


@dataclass
class StepResult:
    step: str
    expected: str
    decision: str = "none"
    thermal: str = "none"
    boarded: bool = False
    ok: bool = False
    notes: list[str] = field(default_factory=list)


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def model_dir() -> Path:
    path = default_model_dir()
    if os.environ.get("CONSENTGATE_MODEL_DIR") is None and (ROOT / ".models").is_dir():
        path = ROOT / ".models"
    return path


def demo_overrides(ports: list[int], fps: float) -> dict[str, Any]:
    gate_cmd, gate_evt, sim, central, kiosk = ports
    return {
        "logging": {"level": "info", "json_logs": True},
        "gate": {"command_endpoint": f"tcp://127.0.0.1:{gate_cmd}",
                 "event_endpoint": f"tcp://127.0.0.1:{gate_evt}",
                 "sim_control_endpoint": f"tcp://127.0.0.1:{sim}",
                 "driver": "simulated", "lanes": ["A"]},
        "telemetry": {"central_endpoint": f"tcp://127.0.0.1:{central}", "window_s": 5,
                      "k_anonymity": 1, "resend_initial_s": 0.5, "resend_max_s": 2.0,
                      "heartbeat_s": 1.0},
        "kiosk": {"port": kiosk},
        "capture": {"visible_source": "synthetic", "fps": fps},
        "thermal": {"enabled": True, "source": "synthetic"},
        "lanes": {"lanes": [{"lane_id": "A", "zone": ZONE}], "result_hold_s": 1.5,
                  "presenting_timeout_s": 5.0, "grant_ttl_ms": 6000},
        "consent": {"purge_interval_s": 2},
    }


def pick_photos(folder: Path | None, engine: Any) -> list[np.ndarray]:
    """Face chips: the astronaut, or one photo per identity from `folder` (in memory only)."""
    import cv2

    from edge.screening.synth import default_face_photos, face_chip

    if folder is None:
        return default_face_photos()
    if not folder.is_dir():
        raise DemoError(f"--faces {folder} is not a folder of face photos")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    ids_csv = folder / "identities.csv"
    if ids_csv.is_file():
        seen: set[str] = set()
        chosen = []
        with open(ids_csv, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("identity") not in seen and (folder / row["file"]).is_file():
                    seen.add(row["identity"])
                    chosen.append(folder / row["file"])
        files = chosen
    chips = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        faces = engine.detect(image)
        if len(faces) != 1 or not engine.quality(image, faces[0]).ok:
            continue
        chips.append(face_chip(image, np.asarray(faces[0].landmarks, np.float64)[:2]))
        if len(chips) == 5:
            break
    if not chips:
        raise DemoError(f"no photo in {folder} shows one clear face: use other photos")
    return chips


class Demo:
    def __init__(self, workdir: Path, faces: Path | None, fps: float, out=None) -> None:
        self.workdir = workdir
        self.faces = faces
        self.fps = fps
        self.out = out or sys.stdout
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.events: queue.Queue[DecisionEvent] = queue.Queue()
        self.daemon: Any = None
        self.t0 = time.monotonic()
        self.api_dir = workdir / "api"
        self._api: Any = None

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", file=self.out, flush=True)

    # -- set-up --------------------------------------------------------------------------------
    def setup(self) -> None:
        from edge.daemon import Daemon
        from edge.vision.engine import FaceEngine
        from foundation.curve_keys import create_keypair
        from provisioning.device import init_device

        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.api_dir.mkdir(exist_ok=True)
        self._log_stream = open(logs / "daemon.jsonl", "a", buffering=1)  # noqa: SIM115
        configure_logging("info", json_logs=True, stream=self._log_stream)
        self.ports = free_ports(5)
        central = self.workdir / "central"
        central_pub, _ = create_keypair(central, "central")
        device = init_device(self.workdir / "device", "DEMO-1", model_dir=model_dir(),
                             central_public_key=central_pub,
                             overrides=demo_overrides(self.ports, self.fps))
        self.settings = device.settings
        device_id = device.settings.device.device_id
        from provisioning.staff import add_staff

        self._agent_password = secrets.token_urlsafe(18)  # in memory only, for this run
        add_staff(device, "demo-agent", "agent", self._agent_password)
        shutil.copy(device.layout.device_public_key, central / f"{device_id}.key")
        self.say(f"provisioned device {device_id} in {self.workdir}")
        self.collector_db = central / "windows.db"
        self._spawn("collector", [sys.executable, "-m", "central", "collect", "--keys",
                                  str(central), "--db", str(self.collector_db), "--bind",
                                  f"tcp://127.0.0.1:{self.ports[3]}", "--print-every", "1"])
        self._spawn("gate", [sys.executable, "-m", "gate_controller", "run", "--config",
                             str(device.settings_file)])
        engine = FaceEngine.from_settings(self.settings.vision)
        self.engine = engine
        self.scene = self._scene(engine)
        self.daemon = Daemon.build(self.settings, SystemClock(), source=self.scene, engine=engine)
        self.daemon.pipeline.bus.subscribe(self.events.put)
        self.daemon.start_thread()
        self._wait(lambda: self.daemon.gate_link.up and self._lane_state() == "idle", 30,
                   "the gate controller did not come up")
        self._api_login()
        self.say(f"gate controller, collector and daemon running (kiosk on "
                 f"https://127.0.0.1:{self.ports[4]}, lane A idle)")

    def _scene(self, engine: Any) -> Any:
        from edge.screening.synth import SceneRenderer, synthetic_calibration
        from edge.screening.synth_source import SyntheticScene

        photos = pick_photos(self.faces, engine)
        renderer = SceneRenderer(synthetic_calibration((640, 480), (160, 120), seed=3), photos,
                                 seed=3)
        return SyntheticScene(renderer, SystemClock(), fps=self.fps)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                start_new_session=True)
        log.close()
        self.procs.append((name, proc))

    def _wait(self, cond, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not cond():
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise DemoError(f"the {name} process exited ({proc.returncode}); see "
                                    f"{self.workdir / 'logs' / (name + '.log')}")
            if time.monotonic() > end:
                raise DemoError(what)
            time.sleep(0.05)

    def _lane_state(self) -> str:
        return self.daemon.pipeline.lanes["A"].machine.state.value

    def teardown(self) -> None:
        # the kiosk client first: its idle keep-alive TLS connection would otherwise hold the
        # web server's graceful shutdown (the server's close_notify goes unanswered)
        with contextlib.suppress(Exception):
            self._api.close()
        if self.daemon is not None:
            self.daemon.close()
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(Exception):
            self._log_stream.close()

    # -- the day -------------------------------------------------------------------------------
    def enrol(self, photo: int, reference: str) -> str:
        """What the agent's kiosk page does: show the consent text, check the photo, enrol the
        traveller who accepted; returns the receipt's withdrawal code (kept in memory only)."""
        import base64

        import cv2

        chip = self.scene.renderer.photos[photo]
        ok, jpeg = cv2.imencode(".jpg", chip, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise DemoError("the enrolment photo could not be encoded")
        photo_b64 = base64.b64encode(jpeg.tobytes()).decode("ascii")
        del jpeg
        step = f"enrol {reference[-2:]}"  # file names carry no reference
        text = self._api_call("GET", step, "/api/consent-text")
        check = self._api_call("POST", step, "/api/enrolments/check",
                               {"source": "upload", "photo": photo_b64})
        if not check.get("ok"):
            raise DemoError(f"the kiosk refused the enrolment photo: "
                            f"{', '.join(check.get('advice', [])) or 'no reason given'}")
        receipt = self._api_call("POST", step, "/api/enrolments",
                                 {"source": "upload", "photo": photo_b64,
                                  "reference": reference, "consent_accepted": True,
                                  "consent_version": text["version"]},
                                 expect=201, redact=("withdrawal_code",))
        del photo_b64
        self.say(f"  kiosk: consent text {text['version'][:8]} accepted, photo checked, "
                 f"enrolled; receipt valid until {receipt['expires_at_iso'][11:16]}")
        return str(receipt["withdrawal_code"])

    def withdraw(self, code: str) -> None:
        """The traveller withdraws at the kiosk with the receipt's code."""
        out = self._api_call("POST", "withdraw", "/api/withdrawals",
                             {"code": code, "by": "traveller"})
        if not out.get("withdrawn"):
            raise DemoError("the kiosk did not withdraw the consent")
        self.say("  kiosk: withdrawn with the receipt's code; template deleted")

    def enrol_in_store(self, photo: int, reference: str, expires_in_s: float) -> None:
        """A consent shorter than the kiosk can grant, written straight to the store (step 5
        only: the kiosk always grants kiosk.consent_ttl_s, at least a minute)."""
        store, engine = self.daemon.store, self.engine
        chip = self.scene.renderer.photos[photo]
        consent = store.grant_consent(reference, "automated boarding at this gate",
                                      "flight CG123 today", time.time() + expires_in_s,
                                      actor="demo-agent")
        faces = engine.detect(chip)
        if not faces:
            raise DemoError("the enrolment photo shows no face")
        probe = engine.embed(chip, faces[:1])
        store.enrol(consent.consent_id, [probe[0]], engine.embedder_name, actor="demo-agent")
        probe.fill(0.0)

    def walk(self, name: str, photo: int, canthus_c: float, expected: str,
             board: bool) -> StepResult:
        """One traveller walks up; collect the lane's decision, the thermal result and, for a
        grant, the passage (the traveller then goes through and leaves the scene)."""
        result = StepResult(name, expected)
        self._wait(lambda: self._lane_state() == "idle" and not self.scene.active(), 20,
                   "the lane did not return to idle")
        self._drain()
        w = self.scene.walk(photo, canthus_c, approach_s=1.5, dwell_s=6.0)
        end = time.monotonic() + w.approach_s + w.dwell_s + 2.0
        passed = pass_sent = False
        while time.monotonic() < end:
            if (result.decision != "none" and result.thermal != "none"
                    and (passed or result.decision != "granted" or not board)):
                break
            ev = self._next(end)
            if ev is None:
                break
            why = f" ({REASONS.get(ev.reason, ev.reason)})" if ev.reason else ""
            words = SAY.get(ev.kind, ev.kind.value)
            if ev.kind in DECISIONS and result.decision == "none":
                result.decision = ev.kind.value
                self.say(f"  lane A: {words}{why}")
            elif ev.kind in DECISIONS:
                result.notes.append(f"extra decision {ev.kind.value}")
                self.say(f"  lane A: extra decision {ev.kind.value}{why}")
            elif ev.kind in THERMAL and result.thermal == "none":
                result.thermal = ev.kind.value
                self.say(f"  thermal: {words}")
            elif ev.kind is Kind.PASSAGE:
                passed = True
                result.boarded = True
                self.say("  walked through the gate: boarded, template deleted")
                self.scene.finish(w)
            if (result.decision == "granted" and board and not pass_sent
                    and result.thermal != "none"):
                pass_sent = True  # screened and granted: the traveller walks through
                self._sim_pass("A")
        self._wait(lambda: self.scene.done(w), 15, "the traveller did not leave")
        self._snapshot_api(name)
        return result

    def _next(self, end: float) -> DecisionEvent | None:
        try:
            return self.events.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            return None

    def _await(self, kind: Kind, timeout: float) -> DecisionEvent | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ev = self._next(end)
            if ev is not None and ev.kind is kind:
                return ev
        return None

    def _drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.events.get_nowait()

    def _sim_pass(self, lane: str) -> None:
        import zmq

        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.settings.gate.sim_control_endpoint)
        try:
            s.send_json({"schema": "gate-sim/1", "sim": "pass", "lane": lane})
            if s.poll(2000):
                s.recv_json()
        finally:
            s.close(0)

    def _api_login(self) -> None:
        """A kiosk session as a gate agent would have (the board and counts need one)."""
        import httpx

        # the demo device's self-signed certificate: this client talks to loopback only
        self._api = httpx.Client(base_url=f"https://127.0.0.1:{self.ports[4]}", verify=False,
                                 timeout=5)
        r = self._api.post("/api/session/login", json={"staff_id": "demo-agent",
                                                       "password": self._agent_password})
        self._keep("0 login", "/api/session/login", r)
        if r.status_code != 200:
            raise DemoError(f"the demo agent could not log in to the kiosk ({r.status_code}); "
                            f"see {self.workdir / 'logs' / 'daemon.jsonl'}")
        # what the kiosk page sends with every change: the session's CSRF token and its origin
        self._api.headers.update({"X-CSRF-Token": r.json()["csrf_token"],
                                  "Origin": f"https://127.0.0.1:{self.ports[4]}"})

    def _api_call(self, method: str, name: str, path: str, body: dict | None = None,
                  expect: int = 200, redact: tuple[str, ...] = ()) -> dict:
        """One kiosk API call as the agent; the response is kept for the privacy scan (fields
        in `redact` are replaced in the kept copy only)."""
        import httpx

        try:
            r = self._api.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise DemoError(f"the kiosk did not answer {method} {path}: {exc}") from None
        doc = r.json() if r.headers.get("content-type", "").startswith("application/json") \
            else {}
        kept = dict(doc) if isinstance(doc, dict) else doc
        for key in redact:
            if isinstance(kept, dict) and key in kept:
                kept[key] = "<shown once to the traveller; not kept>"
        self._keep_text(name, path, r.status_code, json.dumps(kept) if redact else r.text)
        if r.status_code != expect:
            detail = doc.get("detail", doc) if isinstance(doc, dict) else doc
            raise DemoError(f"the kiosk answered {method} {path} with {r.status_code}: "
                            f"{str(detail)[:300]}")
        return doc

    def _keep(self, name: str, path: str, r: Any) -> None:
        self._keep_text(name, path, r.status_code, r.text)

    def _keep_text(self, name: str, path: str, status: int, text: str) -> None:
        slug = "".join(c if c.isalnum() else "_" for c in name)[:40]
        (self.api_dir / f"{slug}{path.replace('/', '_')}.txt").write_text(f"{status}\n{text}")

    def _snapshot_api(self, name: str) -> None:
        """Keep every API response of the run (the privacy scan reads them)."""
        import httpx

        for path in ("/healthz", "/metrics", "/api/health", "/api/session", "/api/board",
                     "/api/consents/summary"):
            try:
                self._keep(name, path, self._api.get(path))
            except httpx.HTTPError as exc:
                slug = "".join(c if c.isalnum() else "_" for c in name)[:40]
                (self.api_dir / f"{slug}{path.replace('/', '_')}.err").write_text(str(exc))

    def play(self, duration: float | None) -> list[StepResult]:
        deadline = None if duration is None else self.t0 + duration
        results: list[StepResult] = []
        n = len(self.scene.renderer.photos)
        store = self.daemon.store

        def step_ok() -> bool:
            return deadline is None or time.monotonic() < deadline

        self.say("1. traveller 1 consents at the kiosk and is enrolled there")
        self.enrol(0, "QZSM12")
        r = self.walk("1 consenting traveller boards", 0, NORMAL_C, "granted", board=True)
        r.ok = r.decision == "granted" and r.boarded
        results.append(r)
        if step_ok():
            self.say("2. traveller 2 enrols at the kiosk, walks up with a fever reading")
            self.enrol(1 % n, "QZJO14")
            r = self.walk("2 fever reading referred", 1 % n, FEVER_C, "granted + referred",
                          board=True)
            r.ok = r.thermal == "referred" and r.decision == "granted"
            results.append(r)
        if step_ok():
            self.say("3. traveller 3 never consented")
            before = store.stats()
            r = self.walk("3 never consented", 2 % n, NORMAL_C, "not_matched", board=False)
            after = store.stats()
            unchanged = all(before[k] == after[k]
                            for k in ("active_consents", "templates", "audit_rows"))
            r.notes.append("store unchanged" if unchanged else "STORE CHANGED")
            r.ok = r.decision == "not_matched" and unchanged
            results.append(r)
        if step_ok():
            self.say("4. traveller 4 enrols at the kiosk, then withdraws there with the "
                     "receipt's code")
            code = self.enrol(3 % n, "QZLE3F")
            self.withdraw(code)
            del code
            r = self.walk("4 withdrew, then not matched", 3 % n, NORMAL_C, "not_matched",
                          board=False)
            r.ok = r.decision == "not_matched"
            results.append(r)
        if step_ok():
            self.say("5. traveller 5's consent expires before they reach the gate (a 2 s "
                     "consent written straight to the store: the kiosk grants at least a "
                     "minute)")
            self.enrol_in_store(4 % n, "QZDI21", 2.0)
            time.sleep(2.5)
            r = self.walk("5 consent expired, not matched", 4 % n, NORMAL_C, "not_matched",
                          board=False)
            r.ok = r.decision == "not_matched"
            results.append(r)
        if deadline is not None and time.monotonic() < deadline:
            self.say("script done; the scene keeps going until --duration ends")
            while time.monotonic() < deadline:
                if not self.scene.active():
                    self.scene.walk(0, NORMAL_C, approach_s=1.5, dwell_s=3.0)
                time.sleep(0.2)
        return results

    def flush_telemetry(self, timeout: float = 20.0) -> dict[str, int]:
        """Wait for the current window to close and reach the collector; its totals."""
        window = self.settings.telemetry.window_s
        last_window_end = (int(time.time()) // window + 1) * window
        self.say("waiting for the last telemetry window to reach the collector")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if time.time() > last_window_end + 0.5:
                status = self.daemon.uplink.status() if self.daemon.uplink else {"pending": 0}
                if status.get("pending", 0) == 0 and self._collector_has(last_window_end):
                    break
            time.sleep(0.2)
        return collector_totals(self.collector_db)

    def _collector_has(self, window_end: int) -> bool:
        with contextlib.suppress(sqlite3.Error):
            con = sqlite3.connect(f"file:{self.collector_db}?mode=ro", uri=True)
            try:
                row = con.execute("SELECT MAX(window_start + window_s) FROM windows").fetchone()
                return row[0] is not None and row[0] >= window_end
            finally:
                con.close()
        return False


def collector_totals(db: Path) -> dict[str, int]:
    from wire.telemetry import COUNT_FIELDS

    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sums = ", ".join(f"COALESCE({'MAX' if f.startswith('peak') else 'SUM'}({f}), 0)"
                         for f in COUNT_FIELDS)
        row = con.execute(f"SELECT COUNT(*), {sums} FROM windows").fetchone()
    finally:
        con.close()
    return {"windows": row[0], **dict(zip(COUNT_FIELDS, row[1:], strict=True))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds to run in all (default: until the scripted day ends)")
    parser.add_argument("--faces", type=Path, default=None,
                        help="folder of face photos (e.g. ../shared/faces) instead of the "
                             "astronaut")
    parser.add_argument("--fps", type=float, default=12.0, help="synthetic camera frame rate")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the run's files here (default: a temp folder, removed)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="consentgate-demo-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, args.faces, args.fps)
    try:
        demo.setup()
        results = demo.play(args.duration)
        totals = demo.flush_telemetry()
        daemon_counts = {"decision_latency_p50_ms": _pct(demo.daemon.pipeline.latencies, 50),
                         "decision_latency_p95_ms": _pct(demo.daemon.pipeline.latencies, 95)}
    finally:
        demo.teardown()
        if tmp is not None:
            tmp.cleanup()
    ok = all(r.ok for r in results)
    print("\noutcomes", flush=True)
    for r in results:
        flag = "ok " if r.ok else "BAD"
        print(f"  {flag} {r.step:34s} decision={r.decision:12s} thermal={r.thermal:10s}"
              f"{' boarded' if r.boarded else ''} {' '.join(r.notes)}")
    if len(results) < 5:
        print(f"  (--duration ended the day after step {len(results)}; "
              f"steps {len(results) + 1}-5 not played)")
    print("collector received (anonymous counts, k=1 on this demo device):")
    print("  " + " ".join(f"{k}={v}" for k, v in totals.items()))
    print(f"decision latency p50 {daemon_counts['decision_latency_p50_ms']} ms, "
          f"p95 {daemon_counts['decision_latency_p95_ms']} ms")
    print(f"logs and files of this run: {workdir}" if tmp is None else
          "logs and files of this run were in a temp folder (keep them with --workdir DIR)")
    if args.json:
        print(json.dumps({"ok": ok, "outcomes": [r.__dict__ for r in results],
                          "collector": totals, **daemon_counts,
                          "workdir": None if tmp else str(workdir)}))
    return 0 if ok else 1


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None
