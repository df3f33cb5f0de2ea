"""The systemd units in deploy/: valid for `systemd-analyze verify`, hardened (exposure score
from `systemd-analyze security --offline=yes`), consistent with the settings' paths and with
each other (start order, what restarts what), and the gate controller and the daemon run under
their MemoryDenyWriteExecute= policy."""

from __future__ import annotations

import ctypes.util
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers.devices import daemon_device

from foundation.peers import Peer, daemon_argv, gate_controller_argv, wait_for
from foundation.settings import RUN_DIR, DeviceSettings, GateSettings, load_settings
from gate_controller.client import GateClient

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "deploy" / "systemd"
SYSUSERS = ROOT / "deploy" / "sysusers.d" / "consentgate.conf"
DAEMON, GATE, COLLECTOR = "consentgate.service", "consentgate-gate.service", \
    "consentgate-collector.service"
ALL_UNITS = (DAEMON, GATE, COLLECTOR)
VENV_PYTHON = "/opt/consentgate/.venv/bin/python"
SETTINGS_FILE = DeviceSettings().data_dir / "settings.toml"  # where `init` writes it
MAX_EXPOSURE = 2.5  # systemd-analyze's scale: 0 (locked down) .. 10 (unprotected); 'OK' < 3.9
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "CapabilityBoundingSet": "", "DevicePolicy": "closed",
    "ProtectKernelTunables": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "User": "consentgate",
}


def _parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file: section -> key -> every value given (systemd allows repeats)."""
    out: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key=value: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def _one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert values, f"[{section}] {key}= is missing"
    return values[-1]


def _words(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> set[str]:
    return {w for v in unit.get(section, {}).get(key, []) for w in v.split()}


@pytest.fixture(scope="module")
def units() -> dict[str, dict[str, dict[str, list[str]]]]:
    return {name: _parse(UNITS / name) for name in ALL_UNITS}


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    try:
        ok = subprocess.run([tool, "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        pytest.skip("systemd-analyze cannot run here")
    return tool


@pytest.fixture(scope="module")
def runnable_units(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The units copied with ExecStart's interpreter swapped for one that exists here (verify
    refuses a missing binary; /opt/consentgate is only there on an installed box)."""
    folder = tmp_path_factory.mktemp("units")
    for name in ALL_UNITS:
        text = (UNITS / name).read_text(encoding="utf-8")
        assert f"ExecStart={VENV_PYTHON} " in text
        (folder / name).write_text(text.replace(f"ExecStart={VENV_PYTHON} ",
                                                f"ExecStart={sys.executable} "))
    yield folder


@pytest.mark.parametrize("name", ALL_UNITS)
def test_systemd_analyze_verify(name: str, runnable_units: Path) -> None:
    tool = _systemd_analyze()
    proc = subprocess.run([tool, "verify", "--man=no", str(runnable_units / name)],
                          capture_output=True, text=True, timeout=120, cwd=runnable_units)
    # verify prints one line per problem (unknown key, bad value, missing unit) and exits 1
    # on errors; a clean unit prints nothing at all
    complaints = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert proc.returncode == 0 and not complaints, complaints


@pytest.mark.parametrize("name", ALL_UNITS)
def test_exposure_score(name: str) -> None:
    tool = _systemd_analyze()
    proc = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(UNITS / name)],
                          capture_output=True, text=True, timeout=120, cwd=UNITS)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout)
    if found is None:
        pytest.skip(f"systemd-analyze security --offline is not supported here: "
                    f"{proc.stderr.strip()[:200]}")
    score = float(found.group(1))
    print(f"\nsystemd-analyze security --offline=yes {name}: exposure {score:.1f}")
    assert score <= MAX_EXPOSURE, proc.stdout


def test_sysusers_creates_the_service_user(tmp_path: Path) -> None:
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        pytest.skip("systemd-sysusers is not installed here")
    (tmp_path / "etc").mkdir()
    proc = subprocess.run([tool, "--dry-run", f"--root={tmp_path}", str(SYSUSERS.resolve())],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Creating user 'consentgate'" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ALL_UNITS)
def test_hardening_and_service_user(name: str, units) -> None:
    unit = units[name]
    for key, want in HARDENING.items():
        assert _one(unit, "Service", key) == want, key
    assert unit["Service"]["SystemCallFilter"][0] == "@system-service"
    assert _one(unit, "Install", "WantedBy") == "multi-user.target"
    sysusers = [ln.split() for ln in SYSUSERS.read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert any(f[:2] == ["u", "consentgate"] for f in sysusers)


def test_box_units_paths_match_the_settings(units) -> None:
    data_dir = str(DeviceSettings().data_dir)
    for name in (DAEMON, GATE):
        exec_start = _one(units[name], "Service", "ExecStart").split()
        assert exec_start[0] == VENV_PYTHON
        assert exec_start[-2:] == ["--config", str(SETTINGS_FILE)], exec_start
        # the gate's ipc sockets live in /run/consentgate, made by RuntimeDirectory= and kept
        # while the other unit still uses them
        for endpoint in (GateSettings().command_endpoint, GateSettings().event_endpoint):
            assert endpoint.startswith(f"ipc://{RUN_DIR}/")
        assert f"/run/{_one(units[name], 'Service', 'RuntimeDirectory')}" == RUN_DIR
        assert _one(units[name], "Service", "RuntimeDirectoryMode") == "0700"
        assert _one(units[name], "Service", "RuntimeDirectoryPreserve") == "yes"
    assert _one(units[DAEMON], "Service", "ExecStart").split()[1:4] == ["-m", "edge", "run"]
    assert _one(units[GATE], "Service", "ExecStart").split()[1:4] == \
        ["-m", "gate_controller", "run"]
    # the daemon writes the device folder; the gate controller only reads it
    assert data_dir in _words(units[DAEMON], "Service", "ReadWritePaths")
    assert "ReadWritePaths" not in units[GATE]["Service"]
    assert _words(units[DAEMON], "Service", "DeviceAllow") >= {"char-video4linux", "rw"}
    assert _words(units[GATE], "Service", "DeviceAllow") >= {"char-ttyUSB", "char-ttyACM"}
    collector = _one(units[COLLECTOR], "Service", "ExecStart").split()
    assert collector[1:4] == ["-m", "central", "collect"]


def test_start_order_and_what_restarts_what(units) -> None:
    daemon, gate = units[DAEMON], units[GATE]
    # the daemon: sd_notify READY/WATCHDOG, restarted on failure within a start limit
    assert _one(daemon, "Service", "Type") == "notify"
    assert _one(daemon, "Service", "WatchdogSec")
    assert _one(daemon, "Service", "Restart") == "on-failure"
    assert int(_one(daemon, "Unit", "StartLimitBurst")) >= 1
    assert _one(daemon, "Unit", "StartLimitIntervalSec")
    # started after the gate controller, which it wants but does not need or bind to
    assert GATE in _words(daemon, "Unit", "After") and GATE in _words(daemon, "Unit", "Wants")
    assert DAEMON in _words(gate, "Unit", "Before")
    for key in ("Requires", "Requisite", "BindsTo", "PartOf", "Upholds"):
        assert GATE not in _words(daemon, "Unit", key), key
        assert DAEMON not in _words(gate, "Unit", key), key
    # the gate controller always comes back, and is never rate-limited into staying down
    assert _one(gate, "Service", "Restart") == "always"
    assert _one(gate, "Unit", "StartLimitIntervalSec") == "0"
    assert "OnFailure" not in daemon["Unit"]


# -- the daemon under MemoryDenyWriteExecute= ---------------------------------------------------
# systemd 252 (Debian 12) enforces MemoryDenyWriteExecute= with seccomp: mmap() asking for
# PROT_WRITE|PROT_EXEC, mprotect()/pkey_mprotect() adding PROT_EXEC and shmat(SHM_EXEC) fail
# with EPERM. The same filter, made with libseccomp, then the command is exec'd.
_MDWE = r"""
import ctypes, ctypes.util, os, sys
lib = ctypes.CDLL(ctypes.util.find_library("seccomp"), use_errno=True)
class Arg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64),
                ("b", ctypes.c_uint64)]
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                       ctypes.c_uint, ctypes.POINTER(Arg)]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
MASKED_EQ, EPERM, W, X, SHM_EXEC = 7, 0x00050000 | 1, 0x2, 0x4, 0o100000
ctx = lib.seccomp_init(0x7FFF0000)
for name, arg, mask in (("mmap", 2, W | X), ("mprotect", 2, X), ("pkey_mprotect", 2, X),
                        ("shmat", 2, SHM_EXEC)):
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    rule = Arg(arg, MASKED_EQ, mask, mask)
    assert lib.seccomp_rule_add_array(ctx, EPERM, nr, 1, ctypes.byref(rule)) == 0, name
ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, as NoNewPrivileges=yes
assert lib.seccomp_load(ctx) == 0
os.execv(sys.argv[1], sys.argv[1:])
"""


def _under_mdwe(argv: list[str]) -> list[str]:
    return [sys.executable, "-c", _MDWE, *argv]


@pytest.fixture(scope="module")
def mdwe_works() -> None:
    if sys.platform != "linux" or not ctypes.util.find_library("seccomp"):
        pytest.skip("needs Linux and libseccomp")
    probe = ("import mmap\ntry:\n    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE"
             " | mmap.PROT_EXEC)\nexcept PermissionError:\n    print('refused')\n")
    proc = subprocess.run(_under_mdwe([sys.executable, "-c", probe]), capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0 and "seccomp" in proc.stderr:
        pytest.skip(f"seccomp filters cannot be loaded here: {proc.stderr.strip()[-200:]}")
    assert proc.stdout.strip() == "refused", proc.stderr  # the filter really bites


def _metric(port: int, name: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    found = re.search(rf"^consentgate_{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


@pytest.mark.integration
def test_box_processes_run_under_memory_deny_write_execute(tmp_path: Path,
                                                           installed_model_dir: Path,
                                                           mdwe_works: None) -> None:
    """onnxruntime (CPU), OpenCV, numpy, SQLCipher, libzmq/libsodium and uvicorn need no W+X
    memory: under the filter the gate controller answers, and the daemon gets READY, feeds the
    watchdog, runs frames, reaches the controller and stops cleanly."""
    settings_file, port = daemon_device(tmp_path, installed_model_dir)
    gate_settings = load_settings(settings_file).gate
    client = GateClient.from_settings(gate_settings, "operator", timeout_ms=500, subscribe=False)

    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(90)
    env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"}
    gate = Peer("gate", _under_mdwe(gate_controller_argv(settings_file)), tmp_path / "gate.log",
                ready=client.answers, cwd=ROOT)
    daemon = Peer("daemon", _under_mdwe(daemon_argv(settings_file)), tmp_path / "daemon.log",
                  env=env, cwd=ROOT)
    try:
        gate.start()
        daemon.start()
        messages: list[str] = []
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert any("READY=1" in m for m in messages)
        wait_for(lambda: (_metric(port, "frames_processed_total") or 0) > 0
                 and _metric(port, "gate_controller_up") == 1, 30,
                 "frames processed and the gate controller up", peers=[gate, daemon])
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        gate.send_signal(signal.SIGTERM)
        assert gate.wait(30) == 0
    finally:
        client.close()
        sock.close()
        for peer in (daemon, gate):
            if peer.running:
                peer.kill()
    for name in ("gate", "daemon"):
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert "Traceback" not in log and "PermissionError" not in log, log[-2000:]
