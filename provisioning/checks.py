"""The self-test's individual checks: each looks at one part of the box and says how to fix it.

A check is a function `(VerifyContext) -> list[CheckResult]`. Checks talk to the real parts
(key files, model files, onnxruntime, cameras, the store, the gate controller, central); which
device they reach is decided by the settings alone, so the same checks run against a bench
device or the simulators. No check writes anything.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from foundation.clock import Clock
from foundation.errors import ConsentGateError
from provisioning.device import Device

Status = Literal["pass", "fail", "skip"]

DETECTOR_MODELS = {"ultraface_landmark68": ("fr_detect", "fr_landmark"), "yunet": ("yunet",)}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""
    simulated: bool = False  # passed against a simulator (the synthetic scene), not hardware

    @property
    def ok(self) -> bool:
        return self.status != "fail"


@dataclass
class VerifyContext:
    device: Device
    clock: Clock
    expect_gpu: bool = False
    camera_seconds: float = 2.0
    network_timeout_s: float = 3.0
    notes: dict[str, object] = field(default_factory=dict)


Check = Callable[[VerifyContext], list[CheckResult]]


def _fail(name: str, detail: str, fix: str) -> list[CheckResult]:
    return [CheckResult(name, "fail", detail, fix)]


def _pass(name: str, detail: str) -> list[CheckResult]:
    return [CheckResult(name, "pass", detail)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# -- keys and certificates -------------------------------------------------------------------
def check_keys(ctx: VerifyContext) -> list[CheckResult]:
    s, lay = ctx.device.settings, ctx.device.layout
    secrets_ = {"store key": s.store_key_file, "reference secret": s.hmac_secret_file,
                "device Curve secret": s.telemetry.device_secret_key_file or
                lay.device_secret_key, "kiosk TLS key": s.kiosk.tls_key_file or lay.tls_key}
    out: list[CheckResult] = []
    for label, path in secrets_.items():
        name = f"key: {label}"
        if not path.is_file():
            out += _fail(name, f"{path} is missing",
                         "restore it from backup, or re-provision with `init --force`")
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            out += _fail(name, f"{path} has mode {mode:04o}", f"chmod 600 {path}")
        else:
            out += _pass(name, f"present, mode {mode:04o}")
    central = s.telemetry.central_public_key_file or lay.central_public_key
    if not s.telemetry.enabled:
        out.append(CheckResult("key: central public key", "skip", "telemetry disabled"))
    elif central.is_file():
        out += _pass("key: central public key", "present")
    else:
        out += _fail("key: central public key", f"{central} is missing",
                     "run `python -m provisioning import-central-key FILE`")
    return out


def check_tls(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.tls import certificate_days_left, certificate_names, covers_host

    name = "kiosk TLS certificate"
    s = ctx.device.settings
    if not s.kiosk.enabled:
        return [CheckResult(name, "skip", "kiosk disabled")]
    cert = s.kiosk.tls_cert_file or ctx.device.layout.tls_cert
    renew = "python -m provisioning renew-kiosk-cert"
    if not cert.is_file():
        return _fail(name, f"{cert} is missing", f"run `{renew} --dir DIR` (or re-provision)")
    try:
        days = certificate_days_left(cert, ctx.clock.now())
        names = certificate_names(cert)
    except ValueError as exc:
        return _fail(name, f"unreadable ({_first_line(exc)})", f"run `{renew} --dir DIR`")
    shown = f"names {', '.join(names) or 'none'}"
    if days < 0:
        return _fail(name, f"expired {-days:.0f} days ago; {shown}", f"run `{renew} --dir DIR`")
    if days < 30:
        return _fail(name, f"expires in {days:.0f} days; {shown}",
                     f"run `{renew} --dir DIR` before it expires")
    host = s.kiosk.host.strip("[]")
    if host not in ("0.0.0.0", "::", "") and not covers_host(names, host):
        return _fail(name, f"does not name kiosk.host {host}, so screens reaching the box "
                     f"there get a name mismatch; {shown}",
                     f"run `{renew} --dir DIR --kiosk-name {host}`")
    return _pass(name, f"valid for {days:.0f} more days; {shown}")


# -- models and inference ----------------------------------------------------------------------
def check_models(ctx: VerifyContext) -> list[CheckResult]:
    from edge.vision.manifest import load_manifest
    from edge.vision.runtime import verify_model_file

    v = ctx.device.settings.vision
    try:
        manifest = load_manifest()
    except ConsentGateError as exc:
        return _fail("models: manifest", _first_line(exc), "reinstall the software")
    names = (*DETECTOR_MODELS.get(v.detector, (v.detector,)), v.embedder)
    out: list[CheckResult] = []
    for name in names:
        try:
            path = verify_model_file(Path(v.model_dir), manifest.get(name))
        except ConsentGateError as exc:
            out += _fail(f"model: {name}", _first_line(exc),
                         f"python -m provisioning install-models --model-dir {v.model_dir}")
        else:
            out += _pass(f"model: {name}", f"{path.name} sha256 matches the manifest")
    return out


def check_providers(ctx: VerifyContext) -> list[CheckResult]:
    import onnxruntime as ort

    from edge.vision.engine import FaceEngine

    v = ctx.device.settings.vision
    available = ort.get_available_providers()
    try:
        engine = FaceEngine.from_settings(v)
    except (ConsentGateError, ValueError) as exc:
        return _fail("onnxruntime providers", f"models do not load ({_first_line(exc)})",
                     f"python -m provisioning install-models --model-dir {v.model_dir}")
    active = engine.providers
    ctx.notes["providers"] = active
    gpu = [p for p in active if p in GPU_PROVIDERS]
    detail = f"running on {', '.join(active)} (build offers {', '.join(available)})"
    if ctx.expect_gpu and not gpu:
        return _fail("onnxruntime providers", detail,
                     "a GPU is expected: check the NVIDIA driver, CUDA/cuDNN libraries and "
                     "that vision.providers lists cuda/tensorrt")
    return _pass("onnxruntime providers", detail + ("" if gpu else "; CPU only"))


# -- cameras -----------------------------------------------------------------------------------
def measure_source(source, seconds: float) -> tuple[int, float]:
    """(frames, seconds) read from an open FrameSource within `seconds`."""
    frames, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        cap = source.read()
        if cap is None:
            break
        frames += 1
    return frames, time.monotonic() - start


def check_cameras(ctx: VerifyContext) -> list[CheckResult]:
    from edge.daemon import visible_source

    s = ctx.device.settings
    cams = {"visible camera": s.capture.visible_source}
    if s.kiosk.enabled and s.kiosk.camera_source:
        cams["kiosk camera"] = s.kiosk.camera_source
    out: list[CheckResult] = []
    for label, spec in cams.items():
        one = s.model_copy(update={"capture": s.capture.model_copy(
            update={"visible_source": spec})})
        try:
            source = visible_source(one, ctx.clock)
            source.open()
        except ConsentGateError as exc:
            out += _fail(label, f"{spec!r} does not open ({_first_line(exc)})",
                         "check the cable/URL and capture.visible_source")
            continue
        try:
            frames, took = measure_source(source, ctx.camera_seconds)
        except ConsentGateError as exc:
            out += _fail(label, f"read failed ({_first_line(exc)})", "check the camera")
            continue
        finally:
            source.close()
        fps = frames / took if took > 0 else 0.0
        want = s.capture.fps
        if frames == 0:
            out += _fail(label, f"{spec!r} opened but delivered no frames",
                         "check the camera's power and stream settings")
        elif fps < 0.8 * want:
            out += _fail(label, f"{fps:.1f} fps, configured {want:g}",
                         "lower capture.fps or fix the camera's mode/bandwidth")
        elif spec == "synthetic":
            out.append(CheckResult(label, "pass", f"SIMULATED: the synthetic demo scene, not a "
                                   f"camera ({frames} frames, {fps:.1f} fps)",
                                   "for a real gate set capture.visible_source to the camera "
                                   "in settings.toml", simulated=True))
        else:
            out += _pass(label, f"{frames} frames, {fps:.1f} fps (configured {want:g})")
    return out


# -- thermal -----------------------------------------------------------------------------------
def check_thermal(ctx: VerifyContext) -> list[CheckResult]:
    import numpy as np

    from edge.capture.thermal import ThermalSource, ck_to_c
    from edge.screening.calibration import load_calibration

    s = ctx.device.settings
    t = s.thermal
    name = "thermal camera"
    synthetic = s.capture.visible_source == "synthetic" and t.source in (None, "synthetic")
    if not t.enabled or not (t.source or synthetic):
        return [CheckResult(name, "skip", "thermal screening disabled or no thermal.source")]
    if synthetic:  # the synthetic scene renders thermal frames beside the visible ones
        from edge.daemon import visible_source

        scene = visible_source(s, ctx.clock)
        try:
            scene.open()
            frames = [cap.thermal for cap in (scene.read() for _ in range(5))
                      if cap is not None and cap.thermal is not None]
        finally:
            scene.close()
        cal = scene.renderer.calibration
        if not frames:
            return _fail(name, "the synthetic scene rendered no thermal frames",
                         "report this to the vendor")
    else:
        if t.calibration_file is None:
            return _fail(name, "no calibration file set",
                         "run `python -m provisioning calibrate-thermal`")
        try:
            cal = load_calibration(t.calibration_file)
        except ConsentGateError as exc:
            return _fail(name, _first_line(exc),
                         "run `python -m provisioning calibrate-thermal`")
        source = ThermalSource(t.source)
        try:
            source.open()
            frames = [source.read() for _ in range(5)]
        except ConsentGateError as exc:
            return _fail(name, f"{t.source!r}: {_first_line(exc)}",
                         "check the thermal camera's cable and radiometric (Y16) mode")
        finally:
            source.close()
    h, w = frames[0].shape
    if (w, h) != cal.thermal_size:
        return _fail(name, f"frames are {w}x{h}, calibration is for "
                     f"{cal.thermal_size[0]}x{cal.thermal_size[1]}",
                     "set the camera to the calibrated mode or recalibrate")
    lo, hi = cal.valid_range_ck
    stack = np.stack(frames)
    saturated = float(np.mean((stack <= lo) | (stack >= hi)))
    scene = ck_to_c(np.median(stack))
    if saturated > 0.01 or not -20.0 <= float(scene) <= 60.0:
        return _fail(name, f"frames out of range (median {float(scene):.1f} C, "
                     f"{saturated:.1%} saturated)", "check the camera's radiometric mode and "
                     "gain; recalibrate")
    x, y, bw, bh = cal.blackbody_roi
    reads = ck_to_c(stack[:, y:y + bh, x:x + bw].reshape(len(frames), -1).mean(axis=1))
    err = float(np.max(np.abs(reads - cal.blackbody_c)))
    if err > t.blackbody_max_drift_c:
        return _fail(name, f"blackbody not seen at its set point (off by {err:.2f} C)",
                     "check the blackbody is on, in view and stable; recalibrate if moved")
    detail = (f"{w}x{h}, scene median {float(scene):.1f} C, blackbody within {err:.2f} C of "
              f"{cal.blackbody_c:g} C")
    if synthetic:
        return [CheckResult(name, "pass", "SIMULATED: frames of the synthetic demo scene, not "
                            "a thermal camera (" + detail + ")",
                            "for a real gate set thermal.source to the radiometric camera and "
                            "run calibrate-thermal", simulated=True)]
    return _pass(name, detail)


# -- store -------------------------------------------------------------------------------------
def check_store(ctx: VerifyContext) -> list[CheckResult]:
    from edge.consent.errors import StoreBusyError
    from edge.consent.store import ConsentStore

    s = ctx.device.settings
    try:
        store = ConsentStore.open(s.store_path, s.store_key_file, s.hmac_secret_file, ctx.clock)
    except StoreBusyError:  # the daemon holds the store: check it read-only beside the daemon
        return _check_store_in_use(ctx)
    except ConsentGateError as exc:
        return _fail("consent store", _first_line(exc),
                     "restore the store and its key from backup, or re-provision")
    try:
        from provisioning.store_check import inspect_store

        audit_rows = store.audit_log.verify()
        found = inspect_store(s.store_path, s.store_key_file)
        if found.problems:
            return _fail("consent store", f"integrity check: {found.problems[0]}",
                         "restore the store from backup")
    except ConsentGateError as exc:
        return _fail("consent store", _first_line(exc), "restore the store from backup")
    finally:
        store.close()
    return _pass("consent store", f"opens with its key; integrity ok; audit chain of "
                                  f"{audit_rows} rows verified")


def _check_store_in_use(ctx: VerifyContext) -> list[CheckResult]:
    """The running daemon holds the store's lock: prove the key opens it, read-only."""
    from edge.consent import opening
    from edge.consent.keys import read_key_file

    s = ctx.device.settings
    try:
        opening.probe(s.store_path, read_key_file(s.store_key_file), full_check=True)
    except ConsentGateError as exc:
        return _fail("consent store", _first_line(exc),
                     "restore the store and its key from backup, or re-provision")
    return _pass("consent store", "in use by the running daemon; opens with its key and passes "
                                  "a read-only integrity check (stop the daemon to also verify "
                                  "the audit chain)")


# -- gate controller and central ---------------------------------------------------------------
def check_gate(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.probes import probe_gate

    g = ctx.device.settings.gate
    try:
        detail = probe_gate(ctx.device.settings, ctx.network_timeout_s)
    except ConsentGateError as exc:
        return _fail("gate controller", f"{g.command_endpoint}: {_first_line(exc)}",
                     "start it (`python -m gate_controller run`) and check gate.command_endpoint")
    return _pass("gate controller", detail)


def check_central(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.probes import probe_central

    t = ctx.device.settings.telemetry
    if not t.enabled:
        return [CheckResult("central", "skip", "telemetry disabled")]
    central_key = t.central_public_key_file or ctx.device.layout.central_public_key
    if not central_key.is_file():
        return _fail("central", f"{t.central_endpoint}: not tried, central's public key "
                     f"({central_key}) is not installed",
                     "run `python -m provisioning import-central-key FILE`")
    try:
        detail = probe_central(ctx.device, ctx.network_timeout_s)
    except ConsentGateError as exc:
        return _fail("central", f"{t.central_endpoint}: {_first_line(exc)}",
                     "check the network route to central, telemetry.central_endpoint and that "
                     "central has this device's public key")
    return _pass("central", detail)


MIN_K = 5          # statistical offices' usual threshold for publishing a count
MIN_WINDOW_S = 60  # shorter windows would time individual travellers


def check_privacy(ctx: VerifyContext) -> list[CheckResult]:
    """What leaves the box must stay anonymous: suppression and window length."""
    t = ctx.device.settings.telemetry
    if not t.enabled:
        return [CheckResult("telemetry privacy", "skip", "telemetry disabled")]
    if t.k_anonymity < MIN_K:
        return _fail("telemetry privacy", f"telemetry.k_anonymity = {t.k_anonymity}: counts "
                     f"from 1 to {MIN_K - 1} would leave the box",
                     f"set telemetry.k_anonymity to {MIN_K} or more in the settings file")
    if t.window_s < MIN_WINDOW_S:
        return _fail("telemetry privacy", f"telemetry.window_s = {t.window_s}: windows this "
                     "short time individual travellers",
                     f"set telemetry.window_s to {MIN_WINDOW_S} or more (default 300)")
    noise = f", Laplace noise epsilon {t.laplace_epsilon}" if t.laplace_epsilon else ""
    return _pass("telemetry privacy", f"counts below {t.k_anonymity} suppressed, "
                                      f"{t.window_s} s windows{noise}")


ALL_CHECKS: tuple[tuple[str, Check], ...] = (
    ("keys", check_keys), ("tls", check_tls), ("models", check_models),
    ("providers", check_providers), ("cameras", check_cameras), ("thermal", check_thermal),
    ("store", check_store), ("gate", check_gate), ("central", check_central),
    ("privacy", check_privacy),
)
