"""The gate faults the lane board must tell truthfully: a face grant the controller refuses
with `busy` because a supervisor's override still holds the lane open (the real safety
machine) voids that grant only, never "gate controller unavailable", and keeps the lane in
service; the board names why the gate is down; a daemon that starts with the controller down
says so at start (`gate_link_down_at_start`), not only at a later drop."""

from __future__ import annotations

import queue

import structlog

from edge.decisions.events import DecisionEvent, EventBus, Kind
from edge.decisions.gatelink import GateLink
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.pipeline import Lane, Pipeline
from edge.kiosk.board import LaneBoard
from edge.kiosk.board_feed import board_sink, board_state
from foundation.clock import FakeClock
from gate_controller.client import GateUnavailableError
from gate_controller.fake_client import FakeGateClient
from gate_controller.safety import GateMachine
from wire.gate import Ack, HeartbeatCmd, OpenCmd, OverrideCmd

ZONE = [(0, 0), (640, 0), (640, 480), (0, 480)]


class SafetyGate:
    """The controller's real safety rules (gate_controller.safety) behind the client's calls."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.machine = GateMachine(["A"])
        self.acks: list[Ack] = []

    def _do(self, cmd) -> Ack:
        ack, _effects = self.machine.command(cmd, self.clock.monotonic())
        self.acks.append(ack)
        return ack

    def heartbeat(self) -> Ack:
        return self._do(HeartbeatCmd())

    def open(self, lane: str, grant_id: str, ttl_ms: int) -> Ack:
        return self._do(OpenCmd(lane=lane, grant_id=grant_id, ttl_ms=ttl_ms))

    def deny(self, lane: str) -> Ack:
        return Ack(cmd="deny", ok=True)

    def override(self, lane: str, action: str, reason: str, actor: str) -> Ack:
        return self._do(OverrideCmd(lane=lane, action=action, reason=reason, actor=actor))


def test_a_grant_refused_busy_after_an_override_is_not_gate_unavailable() -> None:
    import numpy as np

    clock = FakeClock()
    gate = SafetyGate(clock)
    board = LaneBoard(["A"], clock)
    events: list[DecisionEvent] = []
    pipeline = Pipeline(engine=None, lanes=[Lane(LaneMachine("A", LaneRules(), clock),
                                                 np.asarray(ZONE, np.float32))],
                        matcher=None, gate=gate, boarding=None,
                        bus=EventBus([events.append, board_sink(board)]), clock=clock,
                        on_state=lambda lane, s, d: board.publish_state(lane, board_state(s),
                                                                        d or None))
    assert gate.heartbeat().ok
    assert gate.override("A", "open", "wheelchair user", "sup1").ok  # staff passage pending
    machine = pipeline.lanes["A"].machine
    machine.present(1)
    with structlog.testing.capture_logs() as logs:
        pipeline._run(machine.match(1, "c-1"))
    pipeline.sync_states()
    assert gate.acks[-1].code == "busy"  # the controller's real answer: one passage at a time
    assert any(e["event"] == "gate_command_failed" for e in logs)
    # the lane stays in service: the traveller is sent to staff, no manual, no false alert
    assert machine.state.value == "not_matched"
    assert Kind.MANUAL not in [e.kind for e in events]
    assert Kind.GRANTED not in [e.kind for e in events]  # the gate never opened by face
    snap = board.snapshot()
    assert not any("unavailable" in a["message"] for a in snap["alerts"])
    assert snap["lanes"][0]["state"] == "staffed_lane"
    assert snap["counts"]["granted"] == 0 and snap["counts"]["staffed_lane"] == 1
    # once the hold is over the next traveller is granted as usual (no stuck manual)
    clock.advance(LaneRules().hold_s + 0.1)
    pipeline.tick()
    assert gate.heartbeat().ok  # the link beats on (every 0.5 s in the daemon)
    assert gate.override("A", "close", "passage done", "sup1").ok
    machine.present(2)
    pipeline._run(machine.match(2, "c-2"))
    assert gate.acks[-1].ok and machine.state.value == "granted"
    assert board.snapshot()["counts"]["granted"] == 1


def test_a_controller_that_does_not_answer_says_why_on_the_board() -> None:
    import numpy as np

    clock = FakeClock()
    board = LaneBoard(["A"], clock)
    pipeline = Pipeline(engine=None, lanes=[Lane(LaneMachine("A", LaneRules(), clock),
                                                 np.asarray(ZONE, np.float32))],
                        matcher=None, gate=FakeGateClient(unavailable=True), boarding=None,
                        bus=EventBus([board_sink(board)]), clock=clock)
    machine = pipeline.lanes["A"].machine
    machine.present(1)
    pipeline._run(machine.match(1, "c-1"))
    assert machine.state.value == "manual"
    alert = board.snapshot()["alerts"][-1]
    assert alert["kind"] == "manual"
    assert "did not acknowledge" in alert["message"]  # the reason, not only "unavailable"
    assert alert["message"].endswith("operate the lane by hand")


class DeadGate(FakeGateClient):
    def heartbeat(self) -> Ack:
        raise GateUnavailableError("gate controller did not acknowledge within 1000 ms")


def test_a_daemon_started_with_the_controller_down_logs_it_at_start() -> None:
    clock = FakeClock()
    out: queue.Queue = queue.Queue()
    link = GateLink(DeadGate, 0.5, out, clock)
    client = DeadGate()
    with structlog.testing.capture_logs() as logs:
        link.beat(client)
        link.beat(client)  # a second failure is not logged again
    starts = [e for e in logs if e["event"] == "gate_link_down_at_start"]
    assert len(starts) == 1 and starts[0]["log_level"] == "warning"
    assert "did not acknowledge" in starts[0]["error"] and "systemctl" in starts[0]["action"]
    state = link.state()
    assert state["up"] is False and "since the start" in state["reason"]
    assert out.empty()  # lanes start manual already: nothing new to hand over
    # it comes up, then drops: the drop is logged with its reason and time
    link.beat(FakeGateClient())
    assert link.state() == {"up": True, "reason": None, "since": round(clock.now(), 3)}
    clock.advance(12.0)
    with structlog.testing.capture_logs() as logs:
        link.beat(client)
    assert [e["event"] for e in logs] == ["gate_link_down"]
    assert link.state()["since"] == round(clock.now(), 3)
    assert "not answering" in link.state()["reason"]
