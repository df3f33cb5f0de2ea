"""The daemon's local admin socket: staff administration for provisioning while the daemon runs.

The consent store admits one process at a time (edge.consent.lock), so `python -m provisioning
add-staff`, `list-staff`, `disable-staff` and `unlock-staff` cannot open it beside the daemon;
they ask the daemon through this socket instead. It is a unix stream socket beside the store
and its lock file (`<store>.admin.sock`, in the device's data folder), mode 0600, and the daemon
answers only a peer of its own user (or root), checked with SO_PEERCRED.

One request per connection: one JSON object of at most 4 KiB, then a newline (or the end of
the client's writing), decoded with wire.bounded_json and checked field by field:

    {"v": 1, "op": "list_staff"}
    {"v": 1, "op": "upsert_staff", "name": ..., "role": ..., "password_hash": ...}
    {"v": 1, "op": "set_disabled", "name": ..., "disabled": true}
    {"v": 1, "op": "unlock_staff", "name": ...}

The password is hashed by the client (scrypt, edge.kiosk.passwords), so it never crosses the
socket; the daemon accepts only a hash of the kiosk's scheme at today's strength. The answer is
one JSON line, `{"ok": true, ...}` or `{"ok": false, "error": code, "message": ...}`. Changes are
audited with the actor `provisioning`, like the same commands run with the daemon stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from edge.kiosk.routers.staff_admin import StaffAdmin, hash_ok
from foundation.errors import ConsentGateError
from wire.bounded_json import JSONLimitError, check_object, loads

log = structlog.get_logger(__name__)

MAX_REQUEST = 4096
MAX_REPLY = 256 * 1024
VERSION = 1
ACTOR = "provisioning"
SUN_PATH_MAX = 107
_CONN_TIMEOUT_S = 2.0
_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "list_staff": {},
    "upsert_staff": {"name": str, "role": str, "password_hash": str},
    "set_disabled": {"name": str, "disabled": bool},
    "unlock_staff": {"name": str},
}


class AdminSocketError(ConsentGateError):
    """The admin socket cannot be served or reached; the message says what to do."""


def admin_socket_path(store_path: Path) -> Path:
    """The admin socket of the daemon holding the store at `store_path`."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".admin.sock")


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _read_request(conn: socket.socket) -> bytes:
    """At most MAX_REQUEST + 1 bytes within _CONN_TIMEOUT_S in all (a slow client times out)."""
    data = b""
    deadline = time.monotonic() + _CONN_TIMEOUT_S
    while b"\n" not in data and len(data) <= MAX_REQUEST:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the admin client sent its request too slowly")
        conn.settimeout(left)
        chunk = conn.recv(MAX_REQUEST + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0] if b"\n" in data else data


def handle(admin: StaffAdmin, raw: bytes) -> dict[str, Any]:
    """One request's answer (never raises for a bad request: it answers why instead)."""
    try:
        request = loads(raw, max_bytes=MAX_REQUEST, max_depth=2)
        if not isinstance(request, dict) or request.get("v") != VERSION:
            raise JSONLimitError(f"send an object with \"v\": {VERSION} (a newer provisioning "
                                 "than this daemon? update both)")
        op = request.get("op")
        if op not in _FIELDS:
            raise JSONLimitError("unknown op: use one of " + ", ".join(_FIELDS))
        check_object(request, required={"v": int, "op": str, **_FIELDS[op]})
    except JSONLimitError as exc:
        return {"ok": False, "error": "bad_request", "message": str(exc)[:300]}
    try:
        if op == "list_staff":
            return {"ok": True, "staff": admin.accounts()}
        name = request["name"]
        admin.check_new(name, request.get("role", "agent"))
        if op == "upsert_staff":
            if not hash_ok(request["password_hash"]):
                return {"ok": False, "error": "bad_hash", "message": "the password hash is not "
                        "the kiosk's scrypt scheme at today's strength: hash it with this "
                        "version's provisioning"}
            admin.upsert(name, request["role"], request["password_hash"], ACTOR)
            return {"ok": True}
        if op == "set_disabled":
            admin.set_disabled(name, request["disabled"], ACTOR)
            return {"ok": True}
        return {"ok": True, "failures_cleared": admin.unlock(name, ACTOR)}
    except ConsentGateError as exc:
        return {"ok": False, "error": str(getattr(exc, "code", "refused")),
                "message": str(exc)[:300]}


class AdminSocketServer:
    """Serves `handle` on the unix socket at `path` from one thread, a connection at a time."""

    def __init__(self, path: Path, admin: StaffAdmin) -> None:
        self.path = Path(path)
        self._admin = admin
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> AdminSocketServer:
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise AdminSocketError(f"the admin socket path {self.path} is longer than "
                                   f"{SUN_PATH_MAX} bytes: move the store to a shorter path")
        with contextlib.suppress(FileNotFoundError):  # the store lock is ours: it is stale
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            sock.listen(4)
        except OSError as exc:
            sock.close()
            raise AdminSocketError(f"cannot serve the admin socket {self.path} ({exc.strerror}):"
                                   " check the data folder's owner and free space") from None
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="admin-socket", daemon=True)
        self._thread.start()
        log.info("admin_socket_started", path=str(self.path))
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with conn:
                try:
                    self._one(conn)
                except Exception as exc:  # one bad client never ends the server
                    log.warning("admin_socket_client_failed", error=type(exc).__name__)

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(_CONN_TIMEOUT_S)
        uid = _peer_uid(conn)
        raw = _read_request(conn)  # bounded; read first, so the client always gets its answer
        if uid not in (os.getuid(), 0):
            log.warning("admin_socket_refused_peer", uid=uid)
            reply: dict[str, Any] = {"ok": False, "error": "forbidden", "message": "run this "
                                     "as the daemon's user (the consentgate service user)"}
        else:
            reply = handle(self._admin, raw)
            log.info("admin_socket_request", ok=reply["ok"], error=reply.get("error"))
        conn.sendall(json.dumps(reply, separators=(",", ":")).encode() + b"\n")

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(3)
            with contextlib.suppress(FileNotFoundError):  # only a socket this server bound
                os.unlink(self.path)


def serve_staff_admin(store_path: Path, store: Any, app: Any) -> AdminSocketServer:
    """The daemon's admin socket over its store and, when the kiosk runs, the kiosk's sessions
    and log-in back-off (so an unlock here is the kiosk's unlock). A socket that cannot be
    served is logged (`admin_socket_unavailable`) and the daemon runs on without it."""
    from edge.kiosk.deps import KioskContext
    from edge.kiosk.routers.staff_admin import staff_admin

    ctx = getattr(getattr(app, "state", None), "kiosk", None)
    admin = staff_admin(ctx) if isinstance(ctx, KioskContext) else StaffAdmin(store)
    server = AdminSocketServer(admin_socket_path(store_path), admin)
    try:
        return server.start()
    except AdminSocketError as exc:  # the gate matters more: run on, provisioning will say so
        log.error("admin_socket_unavailable", error=str(exc)[:300])
        return server


def admin_request(path: Path, request: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Send one request to the daemon's admin socket; its answer, or AdminSocketError."""
    body = json.dumps({"v": VERSION, **request}, separators=(",", ":")).encode() + b"\n"
    if len(body) > MAX_REQUEST:
        raise AdminSocketError("the request is too large for the admin socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
            sock.sendall(body)
            data = b""
            while len(data) <= MAX_REPLY and not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (FileNotFoundError, ConnectionRefusedError):
            raise AdminSocketError(f"the daemon holds the store but its admin socket {path} does "
                                   "not answer: is the daemon older than this provisioning, or "
                                   "still starting? Try again in a minute, or stop it "
                                   "(`systemctl stop consentgate`) and run this again") from None
        except PermissionError:
            raise AdminSocketError(f"no permission on the admin socket {path}: run this as the "
                                   "consentgate service user (sudo -u consentgate ...)") from None
        except OSError as exc:
            raise AdminSocketError(f"the admin socket {path} failed ({exc}): check that the "
                                   "daemon is healthy (`systemctl status consentgate`)") from None
    try:
        reply = loads(data.strip(), max_bytes=MAX_REPLY, max_depth=4)
    except JSONLimitError:
        raise AdminSocketError("the daemon's admin socket sent no valid answer: check the "
                               "daemon's log (`journalctl -u consentgate`)") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise AdminSocketError("the daemon's admin socket sent an unexpected answer: update "
                               "provisioning and the daemon together")
    return reply
