"""End to end through the real appliance, driven from the kiosk page in Debian's chromium.

A throwaway device is provisioned (`init_device`), a staff account is added through
provisioning (`add_staff`), the real gate controller (simulated gate) and a telemetry collector
run on loopback (`LoopbackPeers`), and the real daemon (`Daemon.build`: encrypted store, face
engine, gallery, capture reader, tracker, lane machines, gate link, kiosk over the device's TLS
certificate) runs on the synthetic scene. In the browser an agent logs in, enrols the traveller
the scene walks up (the same photo, uploaded), watches lane A turn `granted` on the live board
when the traveller walks up, withdraws the consent through the page, and sees the traveller's
next walk-up sent to the staffed lane. A screenshot of each step lands under the test's tmp dir.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from helpers.browser import Shots, chromium_page, log_in

from edge.decisions.events import DecisionEvent, Kind
from foundation.clock import SystemClock
from foundation.peers import free_port, wait_for
from provisioning.device import init_device
from provisioning.loopback import LoopbackPeers
from provisioning.staff import add_staff

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

PASSWORD = "e2e-agent-password-1"
REFERENCE = "ASTRO1"
ZONE = [(0.3125, 0.1875), (0.6875, 0.1875), (0.6875, 0.875), (0.3125, 0.875)]  # as in demo
DECISIONS = {Kind.GRANTED, Kind.NOT_MATCHED, Kind.MATCHED_HELD}


@dataclass
class Appliance:
    daemon: object
    scene: object
    url: str
    events: queue.Queue[DecisionEvent]

    def lane_state(self) -> str:
        return self.daemon.pipeline.lanes["A"].machine.state.value

    def decisions(self, timeout: float) -> list[Kind]:
        """Decision kinds the bus emitted within `timeout` (anonymous events only)."""
        out: list[Kind] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ev = self.events.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if ev.kind in DECISIONS:
                out.append(ev.kind)
        return out

    def drain(self) -> None:
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                return


@pytest.fixture
def appliance(tmp_path: Path, installed_model_dir: Path) -> Iterator[Appliance]:
    from edge.daemon import Daemon
    from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
    from edge.screening.synth_source import SyntheticScene
    from edge.vision.engine import FaceEngine

    port = free_port()
    device = init_device(tmp_path / "device", "E2E-1", model_dir=installed_model_dir, overrides={
        "kiosk": {"port": port},
        "capture": {"visible_source": "synthetic", "fps": 10},
        "thermal": {"enabled": False},
        "gate": {"driver": "simulated", "lanes": ["A"]},
        "lanes": {"lanes": [{"lane_id": "A", "zone": ZONE}], "result_hold_s": 1.5,
                  "presenting_timeout_s": 5.0, "grant_ttl_ms": 2000},
    })
    add_staff(device, "agent1", "agent", PASSWORD)
    with LoopbackPeers(device) as peers:
        settings = peers.device.settings
        clock = SystemClock()
        engine = FaceEngine.from_settings(settings.vision)
        renderer = SceneRenderer(synthetic_calibration((640, 480), (160, 120), seed=3),
                                 default_face_photos(), seed=3)
        scene = SyntheticScene(renderer, clock, fps=10)
        daemon = Daemon.build(settings, clock, source=scene, engine=engine)
        events: queue.Queue[DecisionEvent] = queue.Queue()
        daemon.pipeline.bus.subscribe(events.put)
        try:
            daemon.start_thread()
            app = Appliance(daemon, scene, f"https://127.0.0.1:{port}", events)
            wait_for(lambda: daemon.gate_link.up and app.lane_state() == "idle", 30,
                       "the gate controller link and lane A idle")
            yield app
        finally:
            daemon.close()


def test_enrol_match_withdraw_then_staffed_lane(appliance: Appliance, tmp_path: Path) -> None:
    from skimage import data

    # test input: the photo the synthetic scene's traveller is rendered from, as a file to upload
    photo = tmp_path / "astronaut.png"
    assert cv2.imwrite(str(photo), data.astronaut()[:, :, ::-1])
    store = appliance.daemon.store

    with chromium_page(tmp_path, ignore_https_errors=True) as page:  # self-signed device cert
        shot = Shots(page, tmp_path / "screenshots")

        # 1. an agent logs in (account from provisioning's add_staff)
        page.goto(appliance.url + "/")
        page.wait_for_selector("#login-view:not([hidden])")
        shot("login")
        log_in(page, appliance.url, "agent1", PASSWORD)
        assert page.inner_text("#who-role") == "agent"
        shot("logged-in")

        # 2. enrol the traveller from the uploaded photo, with consent
        page.click("#tab-enrol")
        page.fill("#enrol-reference", REFERENCE)
        page.click("#enrol-reference-next")
        page.wait_for_selector("#enrol-view[data-step=consent]")
        page.click("#consent-accept")
        page.wait_for_selector("#enrol-view[data-step=photo]")
        page.set_input_files("#photo-file", str(photo))
        page.wait_for_selector("#photo-feedback[data-ok=true]")
        shot("photo-accepted")
        page.click("#enrol-submit")
        page.wait_for_selector("#enrol-view[data-step=receipt]")
        assert page.inner_text("#receipt-code").strip()
        assert page.locator("img").count() == 0  # no image is ever shown
        shot("receipt")
        assert len(store.active_templates()) == 1
        page.click("#enrol-done")

        # 3. the synthetic traveller walks up: the live board shows the match
        page.click("#tab-board")
        page.wait_for_selector("#board-status[data-connected=true]")
        page.wait_for_selector("#lane-A[data-state=idle]")
        shot("board-idle")
        appliance.drain()
        walk = appliance.scene.walk(0, approach_s=1.5, dwell_s=4.0)
        page.wait_for_selector("#lane-A[data-state=granted]", timeout=20_000)
        shot("board-granted")
        assert appliance.decisions(1.0)[:1] == [Kind.GRANTED]
        page.wait_for_selector("#count-granted[data-count='1']")
        # the traveller does not go through; the grant lapses and the walk ends
        wait_for(lambda: appliance.scene.done(walk), 15, "the first walk to end")
        page.wait_for_selector("#lane-A[data-state=idle]", timeout=15_000)
        # the tracker forgets the traveller (lanes.track_max_missed_s): the next walk is new
        wait_for(lambda: not appliance.daemon.pipeline.tracker.tracks, 5,
                   "the first traveller's track to be forgotten")

        # 4. withdraw by booking reference through the page: effective at once
        page.click("#tab-withdraw")
        page.check("#withdraw-kind-reference")
        page.fill("#withdraw-value", REFERENCE)
        page.click("#withdraw-submit")
        page.wait_for_selector("#withdraw-result[data-result=withdrawn]")
        shot("withdrawn")
        assert store.active_templates() == []

        # 5. the same traveller walks up again: sent to the staffed lane
        page.click("#tab-board")
        page.wait_for_selector("#board-status[data-connected=true]")
        appliance.drain()
        appliance.scene.walk(0, approach_s=1.5, dwell_s=4.0)
        page.wait_for_selector("#lane-A[data-state=staffed_lane]", timeout=20_000)
        assert "staffed lane" in page.inner_text("#lane-A-state").lower()
        page.wait_for_selector("#count-staffed_lane[data-count='1']")
        shot("board-staffed-lane")
        later = appliance.decisions(1.0)
        assert later[:1] == [Kind.NOT_MATCHED] and Kind.GRANTED not in later
        assert page.get_attribute("#count-granted", "data-count") == "1"  # no second grant

    shots = sorted(p.name for p in (tmp_path / "screenshots").iterdir())
    assert shots == ["01-login.png", "02-logged-in.png", "03-photo-accepted.png",
                     "04-receipt.png", "05-board-idle.png", "06-board-granted.png",
                     "07-withdrawn.png", "08-board-staffed-lane.png"]
