"""The composition root of the edge daemon: `python -m edge run --config FILE`.

Builds every part from one Settings object, in order: the consent store (a wrong key stops
here, before anything starts), the face engine (verified and warmed up), the gallery, capture
(one latest-frame reader per camera), thermal screening, the lane machines, the event bus
(counters, kiosk board, log, metrics), the gate link, telemetry and the kiosk web app with
`/healthz` and `/metrics`. Then it tells systemd READY and runs the inference loop on the main
thread until SIGTERM, feeding the watchdog. Nothing else in the code base picks implementations.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import threading
from pathlib import Path
from typing import Any

import structlog

from edge.capture.decoder_log import native_log_tap
from edge.capture.reader import LatestFrameReader
from edge.capture.source import FrameSource
from edge.capture.thermal_frames import ThermalFrames
from edge.composition.pad_setup import build_pad
from edge.composition.sources import load_calibration, visible_source
from edge.decisions.events import EventBus, counters_sink, log_sink
from edge.decisions.evidence import EvidenceRules
from edge.decisions.gatelink import GateLink
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.pipeline import Lane, Pipeline
from edge.decisions.token_setup import TokenGate
from edge.kiosk.admin_socket import serve_staff_admin
from edge.kiosk.board_feed import board_health_feed, board_sink, board_state
from edge.operations.errors import DaemonError
from edge.operations.health import HealthFeed, daemon_health, reader_gauges
from edge.operations.inference_loop import InferenceLoop
from edge.operations.metrics import DaemonMetrics
from edge.operations.sdnotify import SdNotifier
from edge.operations.web_server import WebServer
from edge.vision.operating_point import fpir_rule
from edge.vision.tracker import IoUTracker
from foundation.clock import Clock, SystemClock
from foundation.errors import ConsentGateError
from foundation.logs import configure_logging
from foundation.restart_budget import RestartBudget
from foundation.settings import Settings, load_settings

# the names tests and tools import from the composition root
__all__ = ["Daemon", "DaemonError", "ThermalFrames", "add_arguments", "board_sink", "run",
           "visible_source"]

log = structlog.get_logger(__name__)

RESTARTS_PER_WINDOW = 5
RESTART_WINDOW_S = 60.0


class Daemon:
    """Everything the daemon runs, built by `build` and driven by `run` / `start_thread`."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = DaemonMetrics()
        self.notifier = SdNotifier()
        self.stop_event = threading.Event()
        self.gate_queue: queue.Queue = queue.Queue()
        self._closers: list[tuple[str, Any]] = []
        self._loop_beat = clock.monotonic()
        # DESIGN: a supervised part gets a restart budget (5 a minute), not endless restarts
        self.loop_budget = RestartBudget(clock, RESTARTS_PER_WINDOW, RESTART_WINDOW_S)
        self._thread: threading.Thread | None = None
        self.store: Any = None
        self.engine: Any = None
        self.gallery: Any = None
        self.boarding: Any = None  # edge.consent.boarding.Boarding
        self.reader: LatestFrameReader | None = None
        self.thermal_reader: LatestFrameReader | None = None
        self.thermal_status: dict[str, str] = {"state": "on"}  # /healthz: off and why
        self.kiosk_reader: LatestFrameReader | None = None
        self.pipeline: Pipeline | None = None
        self.tokens: TokenGate | None = None  # token mode: QR codes, scanners, held keys
        self.board: Any = None
        self.health_feed: HealthFeed | None = None  # /healthz onto the board
        self.counters: Any = None
        self.uplink: Any = None
        self.gate_link: GateLink | None = None
        self.gate_client: Any = None
        self.app: Any = None
        self.web: WebServer | None = None
        self._server_kwargs: dict[str, Any] | None = None  # uvicorn's, from kiosk settings

    # -- composition ---------------------------------------------------------------------------
    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None, *,
              source: FrameSource | None = None, engine: Any = None) -> Daemon:
        from edge.consent.boarding import Boarding, load_schedule
        from edge.consent.gallery import Gallery
        from edge.consent.store import ConsentStore
        from edge.kiosk.board import LaneBoard
        from edge.kiosk.board_counts import StoreCounts
        from edge.kiosk.serving import uvicorn_kwargs
        from edge.telemetry.counters import WindowCounters
        from edge.vision.engine import FaceEngine

        clock = clock or SystemClock()
        d = cls(settings, clock)
        # TLS half set up, or a missing certificate, stops here: never a plain-HTTP kiosk
        d._server_kwargs = uvicorn_kwargs(settings.kiosk)
        try:
            # 1. the store first: a wrong key refuses to start before anything runs
            d.store = ConsentStore.from_settings(settings, clock)
            d._closers.append(("store", d.store.close))
            purged = d.store.purge()
            log.info("startup_purge", purged=purged)
            # 2. models, verified and warmed up before the watchdog clock starts
            d.engine = engine or FaceEngine.from_settings(settings.vision)
            schedule = settings.lanes.boarding_schedule  # a bad schedule stops the start
            d.boarding = Boarding(clock, load_schedule(schedule) if schedule else ())
            d.gallery = Gallery(d.store, clock, d.engine.threshold,
                                settings.consent.match_margin,
                                rule=fpir_rule(settings.vision.embedder,
                                               settings.consent.target_fpir,
                                               settings.consent.match_margin),
                                boarding=d.boarding.scopes)
            point = d.gallery.operating_point()
            if point is not None:
                log.info("gallery_operating_point_at_start", threshold=round(point.threshold, 4),
                         gallery_size=point.gallery_size, target_fpir=point.target_fpir,
                         in_range=point.in_range, extrapolated=point.extrapolated)
                if not point.in_range:
                    log.warning("gallery_outside_calibration",
                                gallery_size=point.gallery_size)
            d._closers.append(("gallery", d.gallery.close))
            # 3. capture
            src = source or visible_source(settings, clock)
            cap = settings.capture
            d.reader = LatestFrameReader.for_capture(src, clock, cap)
            screener = d._build_thermal(src)
            # 4. decisions and their sinks
            lane_ids = [lane.lane_id for lane in settings.lanes.lanes]
            d.board = LaneBoard(lane_ids, clock, StoreCounts(d.store.db))  # counts kept
            d.health_feed = HealthFeed(board_health_feed(d.board, d.health, d.gallery))
            liveness = build_pad(settings, screener, d.board)  # PAD before any match
            d.counters = WindowCounters(clock, settings.telemetry.window_s)
            bus = EventBus([log_sink, counters_sink(d.counters.add), board_sink(d.board)])
            rules = LaneRules(presenting_timeout_s=settings.lanes.presenting_timeout_s,
                              grant_ttl_ms=settings.lanes.grant_ttl_ms,
                              hold_s=settings.lanes.result_hold_s,
                              thermal_enabled=screener is not None,
                              refer_blocks_boarding=settings.thermal.refer_blocks_boarding,
                              pad_required=liveness is not None)
            lanes = [Lane.from_settings(LaneMachine(ls.lane_id, rules, clock, start_manual=True),
                                        ls) for ls in settings.lanes.lanes]
            d.tokens = TokenGate.from_settings(  # gallery, token or both (matching.mode)
                settings, d.store, clock, d.reader, d.boarding.scopes,
                lambda lane, message: d.board.publish_alert(lane, "token", message))
            d._closers.append(("tokens", d.tokens.close))
            d.gate_client = d._gate_client(subscribe=False)
            d._closers.append(("gate_client", d.gate_client.close))
            d.pipeline = Pipeline(
                engine=d.engine, lanes=lanes, matcher=d.gallery, gate=d.gate_client,
                boarding=d.store, bus=bus, clock=clock, metrics=d.metrics,
                tracker=IoUTracker(settings.lanes.track_iou, settings.lanes.track_max_missed_s,
                                   settings.lanes.track_min_hits),
                screener=screener, close_quarters=d._build_close_quarters(),
                counters=d.counters, on_state=d._publish_state, tokens=d.tokens.hooks,
                evidence=EvidenceRules.from_settings(settings.lanes), liveness=liveness)
            d.metrics.gate_available.set(0)
            d.metrics.gallery_size.set(d.gallery.size)
            # 5. telemetry and the kiosk
            if settings.telemetry.enabled:
                from edge.telemetry.uplink import Uplink

                d.uplink = Uplink.from_settings(settings, d.counters, d.store.outbox, clock)
            d.app = d._build_app()
        except BaseException:
            d.close()
            raise
        return d

    def _gate_client(self, subscribe: bool) -> Any:
        from gate_controller.client import GateClient

        # the daemon's CurveZMQ key ([gate] daemon_secret_key_file); GateKeyError says how to
        # make the gate keys when they are missing
        return GateClient.from_settings(self.settings.gate, "daemon", subscribe=subscribe)

    def _build_thermal(self, src: FrameSource) -> Any:
        t = self.settings.thermal
        renderer = getattr(src, "renderer", None)
        if not t.enabled or (t.source is None and renderer is None):
            return self._thermal_off(*(
                ("thermal.enabled is false", "set thermal.enabled = true") if not t.enabled else
                ("thermal.source is not set", "set thermal.source to the radiometric camera, "
                 "then `python -m provisioning calibrate-thermal`")))
        kind = t.source.type if t.source is not None else None
        if renderer is not None and kind in (None, "synthetic"):
            calibration = renderer.calibration  # the synthetic scene renders thermal itself
        elif kind == "synthetic":
            raise DaemonError("thermal.source 'synthetic' needs capture.visible_source "
                              "'synthetic': set both, or name the thermal camera")
        elif t.source is not None:
            from edge.capture.thermal import ThermalSource

            calibration = load_calibration(self.settings)
            cap = self.settings.capture
            self.thermal_reader = LatestFrameReader(
                ThermalFrames(ThermalSource(t.source.spec), cap.fps), self.clock,
                backoff_initial_s=cap.reconnect_initial_s, backoff_max_s=cap.reconnect_max_s)
        from edge.screening.thermal import ThermalScreener

        return ThermalScreener(calibration, t)

    def _thermal_off(self, reason: str, fix: str) -> None:
        """No skin-temperature screening: said at start and in /healthz (the lane board)."""
        self.thermal_status = {"state": "off", "reason": reason}
        log.warning("thermal_screening_off", reason=reason, fix=fix)

    def _build_close_quarters(self) -> Any:
        from edge.screening.close_quarters import CloseQuarters

        settings = self.settings.close_quarters
        return lambda image_size: CloseQuarters(settings, image_size)  # sized on first frame

    def _build_app(self) -> Any:
        from fastapi import FastAPI

        from edge.operations.health import mount_ops, ops_router

        router = ops_router(self.metrics, self.health)
        if not self.settings.kiosk.enabled:
            return mount_ops(FastAPI(docs_url=None, redoc_url=None, openapi_url=None), router)
        from edge.kiosk.app import create_app
        from edge.kiosk.camera import ReaderCamera
        from edge.kiosk.services import KioskServices

        camera = None
        if self.settings.kiosk.camera_source:
            cap = self.settings.capture
            self.kiosk_reader = LatestFrameReader.for_capture(
                visible_source(self.settings, self.clock, self.settings.kiosk.camera_source),
                self.clock, cap)
            camera = ReaderCamera(self.kiosk_reader, max_age_s=cap.stale_after_s)
        services = KioskServices(settings=self.settings, clock=self.clock, store=self.store,
                                 engine=self.engine, board=self.board, gate=self.gate_client,
                                 camera=camera, boarding=self.boarding, tokens=self.tokens)
        return mount_ops(create_app(services), router)

    def _publish_state(self, lane: str, state: str, detail: str) -> None:
        if self.board is not None:
            self.board.publish_state(lane, board_state(state), detail or None)

    # -- health ---------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return daemon_health(self)

    # -- running --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start capture, the gate link, telemetry and the web server (not the loop)."""
        self.metrics.registry.gauge("capture", "capture reader counters and state",
                                    lambda: reader_gauges(self._readers()))
        assert self.reader is not None
        self.reader.start()
        self._closers.append(("reader", self.reader.stop))
        if self.tokens is not None:
            self.tokens.start()  # the camera's QR watcher and the scanner (token/both gates)
        if self.thermal_reader is not None:
            self.thermal_reader.start()
            self._closers.append(("thermal_reader", self.thermal_reader.stop))
        if self.kiosk_reader is not None:
            self.kiosk_reader.start()
            self._closers.append(("kiosk_reader", self.kiosk_reader.stop))
        self.gate_link = GateLink(lambda: self._gate_client(subscribe=True),
                                  self.settings.lanes.heartbeat_interval_s,
                                  self.gate_queue).start()
        self._closers.append(("gate_link", self.gate_link.stop))
        if self.uplink is not None:
            self.uplink.start()
            self._closers.append(("uplink", self.uplink.stop))
        self._closers.append(("admin_socket", serve_staff_admin(  # provisioning's way in
            self.settings.store_path, self.store, self.app).stop))
        self._start_server()
        log.info("daemon_started", lanes=len(self.settings.lanes.lanes),
                 gallery=self.gallery.size,
                 thermal=self.pipeline is not None and self.pipeline.screener is not None)

    def _start_server(self) -> None:
        from edge.kiosk.serving import uvicorn_kwargs

        self.web = WebServer(self.app, self._server_kwargs or uvicorn_kwargs(self.settings.kiosk))
        self.web.start()
        self._closers.append(("server", self._stop_server))

    def _stop_server(self) -> None:
        if self.board is not None:  # open lane-board streams end now, not at their life's end
            self.board.end_streams()
            self.board.flush()  # today's counts, for the next start
        if self.web is not None:
            self.web.stop()

    def loop(self, until: float | None = None) -> None:
        """The inference loop (runs on the calling thread until stop() or `until`)."""
        assert self.pipeline is not None and self.reader is not None
        InferenceLoop(self.pipeline, self.reader, self.clock, self.notifier, self.metrics,
                      self.loop_budget, self.stop_event, self.gate_queue, self._purge,
                      self.settings.consent.purge_interval_s, self.thermal_reader,
                      self._readers(), on_beat=self._beat).run(until)

    def _beat(self, now: float) -> None:
        self._loop_beat = now
        if self.health_feed is not None:
            self.health_feed.poll(now)
        if self.boarding is not None:
            self.boarding.poll()  # a schedule window opened or closed

    def _readers(self) -> list[tuple[str, LatestFrameReader]]:
        return [(name, r) for name, r in (("visible", self.reader),
                                          ("thermal", self.thermal_reader),
                                          ("kiosk", self.kiosk_reader)) if r is not None]

    def _purge(self) -> None:
        try:
            n = self.store.purge()
            if n:
                log.info("purged", templates=n)
            self.metrics.gallery_size.set(self.gallery.size)
            point = self.gallery.operating_point()
            if point is not None:
                self.metrics.match_threshold.set(point.threshold)
                self.metrics.match_calibrated.set(1 if point.in_range else 0)
        except ConsentGateError as exc:
            log.error("purge_failed", error=str(exc)[:200])

    def start_thread(self) -> threading.Thread:
        """start() and run the loop on a background thread (the demo and tests use this)."""
        self.start()
        self._thread = threading.Thread(target=self.loop, name="inference", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(10)

    def close(self) -> None:
        """Stop everything, newest first; gates are left to the controller's safe state."""
        self.stop_event.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self.notifier.stopping()
        for name, closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:
                log.warning("close_failed", part=name, error=str(exc)[:200])
        self._closers.clear()
        self.notifier.close()
        log.info("daemon_stopped")


# -- CLI ----------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path,
                        help="settings.toml written by `python -m provisioning init`")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop by itself after this many seconds (drills and tests)")


def run(args: argparse.Namespace) -> int:
    with native_log_tap():  # FFmpeg/OpenCV/native lines on fd 2 become counted events
        return _run(args, load_settings(args.config))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.logging.level, settings.logging.json_logs)
    daemon = Daemon.build(settings, SystemClock())

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal", signum=signum)
        daemon.stop_event.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.start()
        until = None if args.duration is None else daemon.clock.monotonic() + args.duration
        daemon.loop(until)
    finally:
        daemon.close()
        for s, handler in previous.items():
            with contextlib.suppress(ValueError):
                signal.signal(s, handler)
    return 0
