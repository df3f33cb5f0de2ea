"""The gate link's CurveZMQ keys: who may talk to the controller, and as whom.

Three keypairs, zmq.auth files made by provisioning (`init`, `rotate-gate-keys`) in the
device's keys folder (0700, secrets 0600):

    gate-controller.key(_secret)   the controller's (Curve server) keypair
    gate-daemon.key(_secret)       the daemon's: every command (the `pinger` uses it too)
    gate-operator.key(_secret)     the operator's: `status` only (`python -m gate_controller
                                   status`, the self-test)

The controller reads its secret and the daemon's and operator's public keys; a client reads
its own secret and the controller's public key. The [gate] settings name every file
(`GATE_KEY_FIELDS`); a missing or wrong file is a `GateKeyError` that says how to make it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from foundation.curve_keys import create_keypair, load_keypair, load_public_key
from foundation.errors import KeyFileError
from foundation.settings import GateSettings

Role = Literal["daemon", "operator"]
ROLES: tuple[Role, ...] = ("daemon", "operator")
CONTROLLER, DAEMON, OPERATOR = "gate-controller", "gate-daemon", "gate-operator"
FIX = ("make them with `python -m provisioning init --dir DIR --gate-id ID` (a new box) or "
       "`python -m provisioning rotate-gate-keys --dir DIR` (new gate keys), then restart the "
       "gate controller and the daemon")


class GateKeyError(KeyFileError):
    """A gate key file is missing, unreadable or of the wrong kind."""


@dataclass(frozen=True)
class ServerKeys:
    """The controller's keypair and the public keys it admits, each with its role."""

    public: bytes
    secret: bytes
    peers: dict[bytes, Role]  # Z85 public key -> role


@dataclass(frozen=True)
class ClientKeys:
    """A client's keypair and the controller's public key."""

    public: bytes
    secret: bytes
    server: bytes
    role: Role


def key_files(directory: Path | str) -> dict[str, Path]:
    """[gate] settings field -> file, for keys laid out in `directory` (provisioning's)."""
    d = Path(directory)
    return {
        "controller_secret_key_file": d / f"{CONTROLLER}.key_secret",
        "controller_public_key_file": d / f"{CONTROLLER}.key",
        "daemon_secret_key_file": d / f"{DAEMON}.key_secret",
        "daemon_public_key_file": d / f"{DAEMON}.key",
        "operator_secret_key_file": d / f"{OPERATOR}.key_secret",
        "operator_public_key_file": d / f"{OPERATOR}.key",
    }


GATE_KEY_FIELDS = tuple(key_files("."))


def create_gate_keys(directory: Path | str) -> dict[str, Path]:
    """Write the three gate keypairs into `directory` (0700; secrets 0600); their files."""
    for name in (CONTROLLER, DAEMON, OPERATOR):
        create_keypair(directory, name)
    return key_files(directory)


def _secret(path: Path, label: str) -> tuple[bytes, bytes]:
    try:
        return load_keypair(path)
    except KeyFileError as exc:
        raise GateKeyError(f"gate key ({label}): {exc}; {FIX}") from None


def _public(path: Path, label: str) -> bytes:
    try:
        return load_public_key(path)
    except KeyFileError as exc:
        raise GateKeyError(f"gate key ({label}): {exc}; {FIX}") from None


def server_keys(gs: GateSettings) -> ServerKeys:
    """What the controller needs: its secret, the daemon's and the operator's public keys."""
    public, secret = _secret(gs.controller_secret_key_file, "controller secret")
    daemon = _public(gs.daemon_public_key_file, "daemon public")
    operator = _public(gs.operator_public_key_file, "operator public")
    if daemon == operator:
        raise GateKeyError("gate keys: the daemon and the operator have the same public key, so "
                           f"a status-only client could command the lanes; {FIX}")
    if public in (daemon, operator):
        raise GateKeyError(f"gate keys: a client has the controller's own key; {FIX}")
    return ServerKeys(public, secret, {daemon: "daemon", operator: "operator"})


def client_keys(gs: GateSettings, role: Role = "daemon") -> ClientKeys:
    """What a client of `role` needs: its own secret and the controller's public key."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    secret_file = gs.daemon_secret_key_file if role == "daemon" else gs.operator_secret_key_file
    public, secret = _secret(secret_file, f"{role} secret")
    server = _public(gs.controller_public_key_file, "controller public")
    return ClientKeys(public, secret, server, role)
