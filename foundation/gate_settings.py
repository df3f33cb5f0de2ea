"""The [gate] settings section: the gate controller's sockets, keys, lanes and safety timings.

Read by the gate controller and by the daemon (its gate client); kept apart from the other
sections so the safety process's settings are one small module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

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


class SimulatedDriver(Section):
    """No hardware: lanes open and close in memory (demos, drills, tests); its control socket
    is [gate] sim_control_endpoint."""

    type: Literal["simulated"] = "simulated"


class SerialRelayDriver(Section):
    """The relay board on a serial port (the `relay/1` protocol, docs/protocols.md)."""

    type: Literal["serial_relay"] = "serial_relay"
    serial_port: str = Field(..., min_length=1, max_length=255,
                             description="the board's port, e.g. /dev/ttyUSB0")
    serial_baud: int = Field(115200, ge=1200, le=1_000_000, description="baud rate")
    board_ping_s: float = Field(0.5, gt=0.05, le=5, description="PING interval")
    board_timeout_s: float = Field(1.5, gt=0.1, le=10, description="no reply this long -> fault")
    reconnect_max_s: float = Field(5.0, gt=0.05, le=60, description="reconnect backoff ceiling")


GateDriver = Annotated[SimulatedDriver | SerialRelayDriver, Field(discriminator="type")]
_SERIAL_KEYS = ("serial_port", "serial_baud", "board_ping_s", "board_timeout_s",
                "reconnect_max_s")


def fold_driver_keys(data: Any) -> Any:
    """The former flat form (`driver = "serial_relay"` beside `serial_port = ...` in [gate])
    as the driver table; serial keys beside another driver are refused (a wrong pairing)."""
    if not isinstance(data, dict):
        return data
    flat = {k: data[k] for k in _SERIAL_KEYS if k in data}
    driver = data.get("driver", "simulated" if flat else None)
    if driver is None:
        return data
    if isinstance(driver, str):
        driver = {"type": driver}
    elif not isinstance(driver, dict):
        return data
    elif "type" not in driver:
        raise ValueError("[gate.driver] needs type = 'simulated' or 'serial_relay'")
    if flat:
        if driver.get("type") != "serial_relay":
            raise ValueError(f"{', '.join(flat)} {'belongs' if len(flat) == 1 else 'belong'} to "
                             f"the serial_relay driver, not "
                             f"{driver.get('type')!r}: set driver = \"serial_relay\" or remove "
                             "them")
        driver = {**flat, **driver}
    if driver.get("type") == "serial_relay" and not driver.get("serial_port"):
        raise ValueError("driver 'serial_relay' needs serial_port, e.g. /dev/ttyUSB0")
    rest = {k: v for k, v in data.items() if k not in _SERIAL_KEYS}
    return {**rest, "driver": driver}


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
    driver: GateDriver = Field(default_factory=SimulatedDriver,
                               description="gate I/O: a table with type 'simulated' or "
                                           "'serial_relay' (and its serial_port, ...)")
    lanes: list[str] = Field(["A"], min_length=1, max_length=16,
                             description="lanes this controller owns (board channels 1..n)")
    heartbeat_timeout_s: float = Field(1.5, gt=0.1, le=10, description="no heartbeat -> manual")
    command_timeout_ms: int = Field(1000, ge=50, le=10000, description="daemon waits this for acks")
    override_ttl_ms: int = Field(10000, ge=1000, le=120000,
                                 description="a supervisor 'open' override lasts this long")
    tailgate_window_s: float = Field(10.0, gt=0, le=120,
                                     description="a passage this soon after a used grant, with "
                                                 "the gate closed, is reported as tailgating")

    @model_validator(mode="before")
    @classmethod
    def _former_driver_keys(cls, data: Any) -> Any:
        return fold_driver_keys(data)

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
        return self
