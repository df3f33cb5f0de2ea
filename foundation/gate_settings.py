"""The [gate] settings section: the gate controller's sockets, keys, lanes and safety timings.

Read by the gate controller and by the daemon (its gate client); kept apart from the other
sections so the safety process's settings are one small module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from foundation.settings_base import Section

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def _check_local_endpoint(value: str) -> str:
    """Gate sockets stay on the box: ipc://PATH, or tcp:// on a loopback address."""
    if value.startswith("ipc://") and len(value) > len("ipc://"):
        return value
    if value.startswith("tcp://"):
        host, _, port = value[len("tcp://"):].rpartition(":")
        if host in _LOOPBACK_HOSTS and port.isdigit() and 0 < int(port) < 65536:
            return value
    raise ValueError("use ipc:///run/consentgate/NAME.sock or tcp://127.0.0.1:PORT "
                     "(gate sockets never leave the box)")


RUN_DIR = "/run/consentgate"  # the gate sockets' folder: 0700, the service user's only
_GATE_KEYS = Path("/var/lib/consentgate/keys")  # provisioning writes the device's own paths


def _gate_key(name: str, what: str) -> Path:
    return Field(_GATE_KEYS / name, description=what)


class GateSettings(Section):
    command_endpoint: str = Field(f"ipc://{RUN_DIR}/gate-command.sock",
                                  description="gate controller commands (CurveZMQ); an ipc "
                                              "socket is made 0600 in a 0700 folder")
    event_endpoint: str = Field(f"ipc://{RUN_DIR}/gate-events.sock",
                                description="gate controller events (CurveZMQ)")
    sim_control_endpoint: str = Field(f"ipc://{RUN_DIR}/gate-sim.sock",
                                      description="simulated driver: control socket (fire alarm, "
                                                  "passages, faults) for demos and drills")
    controller_secret_key_file: Path = _gate_key(
        "gate-controller.key_secret", "gate controller: its CurveZMQ secret key (provisioning)")
    daemon_public_key_file: Path = _gate_key(
        "gate-daemon.key", "gate controller: the daemon's public key, admitted for every command")
    operator_public_key_file: Path = _gate_key(
        "gate-operator.key", "gate controller: the operator's public key, admitted for status "
                             "only")
    controller_public_key_file: Path = _gate_key(
        "gate-controller.key", "gate clients (daemon, operator): the controller's public key")
    daemon_secret_key_file: Path = _gate_key(
        "gate-daemon.key_secret", "the daemon (and the pinger): its CurveZMQ secret key")
    operator_secret_key_file: Path = _gate_key(
        "gate-operator.key_secret", "`gate_controller status` and verify: the operator's "
                                    "CurveZMQ secret key")
    driver: Literal["simulated", "serial_relay"] = Field("simulated", description="gate I/O")
    serial_port: str | None = Field(None, description="serial_relay: port, e.g. /dev/ttyUSB0")
    serial_baud: int = Field(115200, ge=1200, le=1_000_000, description="serial_relay: baud rate")
    lanes: list[str] = Field(["A"], min_length=1, max_length=16,
                             description="lanes this controller owns (board channels 1..n)")
    heartbeat_timeout_s: float = Field(1.5, gt=0.1, le=10, description="no heartbeat -> manual")
    command_timeout_ms: int = Field(1000, ge=50, le=10000, description="daemon waits this for acks")
    override_ttl_ms: int = Field(10000, ge=1000, le=120000,
                                 description="a supervisor 'open' override lasts this long")
    tailgate_window_s: float = Field(10.0, gt=0, le=120,
                                     description="a passage this soon after a used grant, with "
                                                 "the gate closed, is reported as tailgating")
    board_ping_s: float = Field(0.5, gt=0.05, le=5, description="serial_relay: PING interval")
    board_timeout_s: float = Field(1.5, gt=0.1, le=10,
                                   description="serial_relay: no reply this long -> fault")
    reconnect_max_s: float = Field(5.0, gt=0.05, le=60,
                                   description="serial_relay: reconnect backoff ceiling")

    @field_validator("command_endpoint", "event_endpoint", "sim_control_endpoint")
    @classmethod
    def _local(cls, value: str) -> str:
        return _check_local_endpoint(value)

    @model_validator(mode="after")
    def _check(self) -> GateSettings:
        if len(set(self.lanes)) != len(self.lanes):
            raise ValueError("lanes must be distinct")
        for lane in self.lanes:
            if not (1 <= len(lane) <= 16 and lane.replace("-", "").replace("_", "").isalnum()):
                raise ValueError(f"lane {lane!r}: use 1-16 letters, digits, '-' or '_'")
        if self.driver == "serial_relay" and not self.serial_port:
            raise ValueError("driver 'serial_relay' needs serial_port, e.g. /dev/ttyUSB0")
        return self
