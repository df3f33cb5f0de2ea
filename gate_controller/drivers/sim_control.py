"""The simulated gate's control socket: lets another process drive the simulator's inputs.

A REP socket (default tcp://127.0.0.1:5562, `[gate] sim_control_endpoint`) takes one JSON
object per request, schema "gate-sim/1":
  {"schema": "gate-sim/1", "sim": "fire", "active": true}   fire-alarm line on/off
  {"schema": "gate-sim/1", "sim": "pass", "lane": "A"}      someone crosses lane A
  {"schema": "gate-sim/1", "sim": "fail"} / {"sim": "recover"}   break / mend the gate I/O
  {"schema": "gate-sim/1", "sim": "show"}                   outputs, alarms, fire line
and answers {"ok": true, "outputs": {...}, "alarms": {...}, "fire": bool} or
{"ok": false, "error": "..."}. It is bound only when the simulated driver is in use.
`python -m gate_controller sim ...` is its command-line client. Requests are decoded with the
bounded decoder (wire.bounded_json: at most 4 KiB, 4 levels deep), so no request ends the
control thread. It is not authenticated: it drives a simulator, never gate hardware (keep it
on an ipc socket in the service user's folder, the default).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import structlog
import zmq

from gate_controller.drivers.simulated import SimulatedGateIO
from gate_controller.server import bind_private
from wire.bounded_json import JSONLimitError, loads

SIM_SCHEMA = "gate-sim/1"
MAX_REQUEST_BYTES = 4096
log = structlog.get_logger(__name__)


def apply(sim: SimulatedGateIO, request: Any) -> dict[str, Any]:
    """Carry out one control request on the simulator; the reply as a dict."""
    if not isinstance(request, dict) or request.get("schema") != SIM_SCHEMA:
        return {"ok": False, "error": f"expected a JSON object with schema {SIM_SCHEMA!r}"}
    action = request.get("sim")
    try:
        if action == "fire":
            active = request.get("active")
            if not isinstance(active, bool):
                return {"ok": False, "error": "fire needs active: true|false"}
            (sim.trigger_fire_alarm if active else sim.clear_fire_alarm)()
        elif action == "pass":
            sim.walk_through(str(request.get("lane")))
        elif action == "fail":
            sim.fail(str(request.get("reason") or "simulated I/O failure")[:200])
        elif action == "recover":
            sim.recover()
        elif action != "show":
            return {"ok": False, "error": f"unknown sim action {str(action)[:32]!r}; use fire, "
                                          "pass, fail, recover or show"}
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "outputs": sim.outputs(), "alarms": sim.alarms(),
            "fire": sim.fire_alarm_active}


class SimulatorControl:
    """Serves `apply` on a REP socket from a background thread."""

    def __init__(self, sim: SimulatedGateIO, endpoint: str,
                 context: zmq.Context[zmq.Socket[bytes]] | None = None) -> None:
        self.sim = sim
        self.endpoint = endpoint
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.REP)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, 64 * 1024)  # larger: dropped by libzmq
        try:
            self._lock = bind_private(self._sock, endpoint)
        except Exception:
            self._sock.close()
            raise
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gate-sim-control", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(50, zmq.POLLIN):
                continue
            data = self._sock.recv()
            request: Any = None
            try:
                request = loads(data, max_bytes=MAX_REQUEST_BYTES, max_depth=4)
                reply = apply(self.sim, request)
            except JSONLimitError as exc:
                reply = {"ok": False, "error": f"request refused ({exc.code}): {exc}"[:300]}
            except Exception as exc:  # a bad request must not end the control thread
                log.exception("gate_sim_control_failed", error=type(exc).__name__)
                reply = {"ok": False, "error": "the simulator failed on this request"}
            action = request.get("sim") if isinstance(request, dict) else None
            log.info("gate_sim_control", action=str(action)[:16], ok=reply["ok"])
            self._sock.send(json.dumps(reply).encode("utf-8"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        if self._lock is not None:
            self._lock.close()


def send(endpoint: str, request: dict[str, Any], timeout_ms: int = 1000,
         context: zmq.Context[zmq.Socket[bytes]] | None = None) -> dict[str, Any]:
    """One request to a simulator control socket; raises TimeoutError without an answer."""
    ctx = context or zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(json.dumps({"schema": SIM_SCHEMA, **request}).encode("utf-8"))
        if not sock.poll(timeout_ms, zmq.POLLIN):
            raise TimeoutError(f"no answer from the gate simulator at {endpoint}")
        reply = loads(sock.recv(), max_bytes=64 * 1024, max_depth=4)
        if not isinstance(reply, dict):
            raise TimeoutError(f"the gate simulator at {endpoint} sent no JSON object")
        return reply
    finally:
        sock.close()
