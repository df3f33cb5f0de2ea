"""Helpers of the kiosk tests (their fixtures, `kiosk_store`, `kiosk_engine`, `kiosk` and
`live_kiosk`, are in tests/conftest.py).

`make_env` builds the kiosk app on a real encrypted ConsentStore, the real FaceEngine, a
LaneBoard and a recording gate double standing in for the ZeroMQ gate client; `LiveServer`
serves an app on a real socket (SSE and browser tests).
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

with warnings.catch_warnings():  # starlette suggests httpx2; TestClient is still httpx-based
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from edge.consent.store import ConsentStore
from edge.kiosk.app import create_app
from edge.kiosk.board import LaneBoard
from edge.kiosk.passwords import hash_password
from edge.kiosk.services import KioskServices
from foundation.clock import FakeClock
from foundation.peers import free_port
from foundation.settings import Settings

PASSWORD = "correct-horse-battery"
STAFF = {"agent1": "agent", "sup1": "supervisor", "eng1": "engineer"}
_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def b64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def b64_array(image: np.ndarray, ext: str = ".png") -> str:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


@dataclass
class RecordingGate:
    """Stands in for gate_controller.client.GateClient: records calls, answers like an Ack."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: bool = False
    unavailable: bool = False

    def _answer(self):
        from wire.gate import Ack, LaneState
        if self.unavailable:
            from gate_controller.client import GateUnavailableError
            raise GateUnavailableError("gate controller did not acknowledge within 1000 ms")
        if self.refuse:
            return Ack(ok=False, code="refused", error="lane is in emergency_open")
        return Ack(ok=True, state=LaneState.CLOSED)

    def override(self, lane: str, action: str, reason: str, actor: str):
        self.calls.append(("override", lane, action, reason, actor))
        return self._answer()

    def reset(self, lane: str, reason: str, actor: str):
        self.calls.append(("reset", lane, reason, actor))
        return self._answer()


class StillCamera:
    """A kiosk camera showing one still image (in memory)."""

    def __init__(self, image: np.ndarray | None) -> None:
        self.image = image

    def latest(self) -> np.ndarray | None:
        return self.image


@dataclass
class KioskEnv:
    services: KioskServices
    client: TestClient
    gate: RecordingGate
    clock: FakeClock

    @property
    def store(self) -> ConsentStore:
        return self.services.store  # type: ignore[return-value]

    @property
    def board(self) -> LaneBoard:
        return self.services.board

    def login(self, name: str = "agent1", password: str = PASSWORD) -> dict:
        r = self.client.post("/api/session/login", json={"staff_id": name, "password": password})
        assert r.status_code == 200, r.text
        info = r.json()
        self.client.headers["X-CSRF-Token"] = info["csrf_token"]
        return info


def kiosk_origin(settings: Settings) -> str:
    """The origin the kiosk page of `settings` is served from (what its browser sends)."""
    k = settings.kiosk
    scheme = "https" if k.tls_cert_file and k.tls_key_file else "http"
    return f"{scheme}://127.0.0.1:{k.port}"


def make_env(store, engine, clock, settings: Settings | None = None, *,
             camera=None, gate: RecordingGate | None = None, with_gate: bool = True,
             port: int | None = None) -> KioskEnv:
    """The kiosk app behind a TestClient that sends the kiosk's own `Origin`, as its page
    does (`port`: the kiosk port the settings name, for an app served on a real socket)."""
    settings = settings or Settings.model_validate(
        {"lanes": {"lanes": [{"lane_id": "A", "zone": [(0, 0), (0.02, 0), (0.02, 0.02)]},
                             {"lane_id": "B", "zone": [(0, 0), (0.02, 0), (0.02, 0.02)]}]}})
    if port is not None:
        settings = settings.model_copy(
            update={"kiosk": settings.kiosk.model_copy(update={"port": port})})
    gate = gate if gate is not None else RecordingGate()
    board = LaneBoard([lane.lane_id for lane in settings.lanes.lanes], clock)
    services = KioskServices(settings=settings, clock=clock, store=store, engine=engine,
                             board=board, gate=gate if with_gate else None, camera=camera)
    client = TestClient(create_app(services), headers={"Origin": kiosk_origin(settings)})
    return KioskEnv(services, client, gate, clock)


class LiveServer:
    """The kiosk app served by a real uvicorn on a free loopback port, in a thread (the
    daemon's own WebServer)."""

    def __init__(self, app, port: int | None = None) -> None:
        from edge.operations.web_server import WebServer

        self.port = port or free_port()
        self.web = WebServer(app, {"host": "127.0.0.1", "port": self.port, "log_config": None,
                                   "access_log": False, "lifespan": "on",
                                   "timeout_graceful_shutdown": 2})
        self.server, self.thread = self.web.server, self.web.thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        """What a browser on the page sends as `Origin` (the settings must name this port)."""
        return self.url

    def __enter__(self) -> LiveServer:
        self.web.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.web.stop(10)
