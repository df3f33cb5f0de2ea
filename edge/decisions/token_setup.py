"""Token mode's parts built from the settings in one place, for the composition root.

`TokenGate.from_settings` gives a gallery gate `NoTokens` and nothing else; a token or both gate
gets `TokenLanes` (opening tokens with edge.consent.sealed against the flights boarding now),
the camera's QR watcher (`matching.camera_codes`) and the lane's code scanner
(`matching.scanner`: serial, or the simulator beside it). `submit` is the kiosk's way in (a
keyboard-wedge scanner on the lane board, when `matching.kiosk_scan`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from edge.capture.codes import CodeWatcher, FrameReader, QrCodes
from edge.capture.scanner import CodeScanner, ScannerThread, SerialScanner, SimulatedScanner
from edge.consent.sealed import SealedTemplates
from edge.consent.store import ConsentStore
from edge.consent.token_format import looks_like_token
from edge.decisions.tokens import Mode, NoTokens, TokenHooks, TokenLanes
from foundation.clock import Clock
from foundation.settings import Settings, SettingsError

Scopes = Callable[[], Collection[str] | None]  # the flights boarding now (None: every flight)
Alert = Callable[[str, str], None]  # lane, message


class TokenGate:
    """The gate's token handling: the lanes' hooks, the camera's code watcher, the scanner."""

    def __init__(self, hooks: TokenLanes | NoTokens, watcher: CodeWatcher | None = None,
                 scanner: ScannerThread | None = None, *, kiosk_scan: bool = False) -> None:
        self.lanes = hooks
        self.watcher = watcher
        self.scanner = scanner
        self.kiosk_scan = kiosk_scan and isinstance(hooks, TokenLanes)

    @property
    def mode(self) -> Mode:
        return self.lanes.mode

    @property
    def hooks(self) -> TokenHooks:
        return self.lanes

    @property
    def simulated_scanner(self) -> SimulatedScanner | None:
        """The simulated scanner, when the settings chose it (demos and drills feed it)."""
        device = self.scanner.scanner if self.scanner is not None else None
        return device if isinstance(device, SimulatedScanner) else None

    @classmethod
    def from_settings(cls, settings: Settings, store: ConsentStore, clock: Clock,
                      frames: FrameReader | None, scopes: Scopes,
                      alert: Alert | None = None) -> TokenGate:
        m = settings.matching
        if m.mode == "gallery":
            return cls(NoTokens())
        lane_ids = [lane.lane_id for lane in settings.lanes.lanes]
        sealed = SealedTemplates(store, clock)
        lanes = TokenLanes(m.mode, lambda text: sealed.open(text, scopes()), clock, lane_ids,
                           threshold=settings.vision.match_threshold, hold_s=m.token_hold_s,
                           alert=alert)
        watcher = None
        if m.camera_codes and frames is not None:
            def zones(width: int, height: int) -> dict[str, np.ndarray]:
                return {lane.lane_id: np.asarray(lane.zone_pixels(width, height), np.float32)
                        for lane in settings.lanes.lanes}
            watcher = CodeWatcher(frames, QrCodes(), lanes.submit, zones, clock,
                                  interval_s=m.camera_codes_interval_s,
                                  repeat_s=m.camera_codes_repeat_s, accept=looks_like_token)
        scanner = None
        if m.scanner != "none":
            lane = m.scanner_lane or lane_ids[0]
            if lane not in lane_ids:
                raise SettingsError(f"matching.scanner_lane {lane!r} is not a lane: use one of "
                                    f"{', '.join(lane_ids)}")
            device: CodeScanner = (SerialScanner(m.scanner_port or "", m.scanner_baud)
                                   if m.scanner == "serial" else SimulatedScanner())
            scanner = ScannerThread(device, lanes.submit, lane)
        return cls(lanes, watcher, scanner, kiosk_scan=m.kiosk_scan)

    def submit(self, text: str, lane: str | None, source: str) -> bool:
        """A token read at `lane`; False on a gallery gate, an unknown lane or a full queue."""
        if not isinstance(self.lanes, TokenLanes):
            return False
        return self.lanes.submit(text, lane, source)

    def start(self) -> None:
        if self.watcher is not None:
            self.watcher.start()
        if self.scanner is not None:
            self.scanner.start()

    def close(self) -> None:
        """Stop the readers and wipe every held template."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.scanner is not None:
            self.scanner.stop()
        if isinstance(self.lanes, TokenLanes):
            self.lanes.close()
