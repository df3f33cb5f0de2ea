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
5. a traveller's consent expires before they reach the gate: not matched;
6. a traveller enrols at the kiosk, then someone else holds up a warmed print of their photo:
   thermal PAD calls it a presentation attack before any search (no grant, a staff alert
   without identity); the enrolled traveller is still enrolled after (demo.pad_step).

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

`--matching token` plays the token-mode day instead (demo.token_day): travellers enrol with a
key only they hold, show its QR code to the gate camera, and board 1:1; no 1:N search runs.

The parts: demo.stage (the device, its peers as processes, the daemon), demo.kiosk_agent (the
kiosk API), demo.walks (walk-ups and their events), demo.central_view (what central stored),
demo.photos (the faces).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from demo.central_view import flush_telemetry
from demo.errors import DemoError
from demo.kiosk_agent import KioskAgent
from demo.stage import AGENT, Stage
from demo.token_day import STEPS as TOKEN_STEPS
from demo.walks import StepResult, Walks

FEVER_C = 39.2
NORMAL_C = 36.6


class Demo:
    """The scripted day on a Stage: see the module docstring."""

    def __init__(self, workdir: Path, faces: Path | None, fps: float, out=None,
                 matching: str = "gallery") -> None:
        self.workdir = workdir
        self.out = out or sys.stdout
        self.t0 = time.monotonic()
        self.matching = matching
        self.stage = Stage(workdir, faces, fps, self.say, matching)
        self.walks = Walks(self.stage, self.say)
        self.agent: KioskAgent | None = None

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", file=self.out, flush=True)

    @property
    def daemon(self) -> Any:
        return self.stage.daemon

    def setup(self) -> None:
        self.stage.setup()
        self.agent = KioskAgent(self.stage.kiosk_url, self.workdir / "api", self.say,
                                self.stage.logs / "daemon.jsonl")
        self.agent.login(AGENT, self.stage.agent_password)
        self.say(f"gate controller, collector and daemon running (kiosk on "
                 f"{self.stage.kiosk_url}, lane A idle)")

    def teardown(self) -> None:
        if self.agent is not None:  # the kiosk client first (see KioskAgent.close)
            self.agent.close()
        self.stage.teardown()

    # -- the day -------------------------------------------------------------------------------
    def enrol(self, photo: int, reference: str) -> str:
        assert self.agent is not None
        return self.agent.enrol(self.stage.scene.renderer.photos[photo], reference)

    def enrol_in_store(self, photo: int, reference: str, expires_in_s: float) -> None:
        """A consent shorter than the kiosk can grant, written straight to the store (step 5
        only: the kiosk always grants kiosk.consent_ttl_s, at least a minute)."""
        store, engine = self.daemon.store, self.stage.engine
        chip = self.stage.scene.renderer.photos[photo]
        consent = store.grant_consent(reference, "automated boarding at this gate",
                                      "flight CG123 today", time.time() + expires_in_s,
                                      actor=AGENT)
        faces = engine.detect(chip)
        if not faces:
            raise DemoError("the enrolment photo shows no face")
        probe = engine.embed(chip, faces[:1])
        store.enrol(consent.consent_id, [probe[0]], engine.embedder_name, actor=AGENT)
        probe.fill(0.0)

    def walk(self, name: str, photo: int, canthus_c: float, expected: str,
             board: bool) -> StepResult:
        result = self.walks.walk(name, photo, canthus_c, expected, board)
        assert self.agent is not None
        self.agent.snapshot(name)  # every API response of the run, for the privacy scan
        return result

    def play(self, duration: float | None) -> list[StepResult]:
        deadline = None if duration is None else self.t0 + duration
        results: list[StepResult] = []
        scene = self.stage.scene
        n = len(scene.renderer.photos)
        store = self.daemon.store

        def step_ok() -> bool:
            return deadline is None or time.monotonic() < deadline

        if self.matching == "token":
            from demo.token_day import play_token_day

            return play_token_day(self, step_ok)
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
            assert self.agent is not None  # made by enrol()
            self.agent.withdraw(code)
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
        if step_ok():
            from demo.pad_step import presentation_attack_step

            results.append(presentation_attack_step(self, 5 % n, NORMAL_C))
        if deadline is not None and time.monotonic() < deadline:
            self.say("script done; the scene keeps going until --duration ends")
            while time.monotonic() < deadline:
                if not scene.active():
                    scene.walk(0, NORMAL_C, approach_s=1.5, dwell_s=3.0)
                time.sleep(0.2)
        return results

    def flush_telemetry(self) -> dict[str, int]:
        return flush_telemetry(self.stage.settings.telemetry.window_s, self.daemon.uplink,
                               self.stage.collector_db, self.say)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds to run in all (default: until the scripted day ends)")
    parser.add_argument("--faces", type=Path, default=None,
                        help="folder of face photos (e.g. ../shared/faces) instead of the "
                             "astronaut")
    parser.add_argument("--fps", type=float, default=12.0, help="synthetic camera frame rate")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the run's files here (default: a temp folder, removed)")
    parser.add_argument("--matching", choices=("gallery", "token"), default="gallery",
                        help="gallery: today's 1:N day; token: the passenger-held-key day "
                             "(1:1 with a QR code only the traveller holds)")
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
    demo = Demo(workdir, args.faces, args.fps, matching=args.matching)
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
    planned = TOKEN_STEPS if args.matching == "token" else 6
    if len(results) < planned:
        print(f"  (--duration ended the day after step {len(results)}; "
              f"steps {len(results) + 1}-{planned} not played)")
    print("collector received (anonymous counts, k=1 on this demo device):")
    print("  " + " ".join(f"{k}={v}" for k, v in totals.items()))
    print(f"decision latency p50 {daemon_counts['decision_latency_p50_ms']} ms, "
          f"p95 {daemon_counts['decision_latency_p95_ms']} ms")
    if restarts := demo.stage.gate_restarts():
        print(f"the gate controller died and was started again {restarts} time(s) "
              f"(logs/gate.log)")
    print(f"logs and files of this run: {workdir}" if tmp is None else
          "logs and files of this run were in a temp folder (keep them with --workdir DIR)")
    if args.json:
        print(json.dumps({"ok": ok, "outcomes": [r.__dict__ for r in results],
                          "collector": totals, **daemon_counts,
                          "workdir": None if tmp else str(workdir)}))
    return 0 if ok else 1


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None
