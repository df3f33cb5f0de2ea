"""Cameras: the visible (and kiosk) camera's frame rate, the thermal camera and its blackbody."""

from __future__ import annotations

import time

from foundation.errors import ConsentGateError
from provisioning.checks.result import CheckResult, VerifyContext, fail, first_line, passed


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
            out += fail(label, f"{spec!r} does not open ({first_line(exc)})",
                         "check the cable/URL and capture.visible_source")
            continue
        try:
            frames, took = measure_source(source, ctx.camera_seconds)
        except ConsentGateError as exc:
            out += fail(label, f"read failed ({first_line(exc)})", "check the camera")
            continue
        finally:
            source.close()
        fps = frames / took if took > 0 else 0.0
        want = s.capture.fps
        if frames == 0:
            out += fail(label, f"{spec!r} opened but delivered no frames",
                         "check the camera's power and stream settings")
        elif fps < 0.8 * want:
            out += fail(label, f"{fps:.1f} fps, configured {want:g}",
                         "lower capture.fps or fix the camera's mode/bandwidth")
        elif spec == "synthetic":
            out.append(CheckResult(label, "pass", f"SIMULATED: the synthetic demo scene, not a "
                                   f"camera ({frames} frames, {fps:.1f} fps)",
                                   "for a real gate set capture.visible_source to the camera "
                                   "in settings.toml", simulated=True,
                                   simulator="the synthetic demo scene"))
        else:
            out += passed(label, f"{frames} frames, {fps:.1f} fps (configured {want:g})")
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
        from edge.screening.synth_source import SyntheticScene

        scene = visible_source(s, ctx.clock)
        assert isinstance(scene, SyntheticScene)  # the settings name the synthetic scene
        try:
            scene.open()
            frames = [cap.thermal for cap in (scene.read() for _ in range(5))
                      if cap is not None and cap.thermal is not None]
        finally:
            scene.close()
        cal = scene.renderer.calibration
        if not frames:
            return fail(name, "the synthetic scene rendered no thermal frames",
                         "report this to the vendor")
    else:
        if t.calibration_file is None:
            return fail(name, "no calibration file set",
                         "run `python -m provisioning calibrate-thermal`")
        try:
            cal = load_calibration(t.calibration_file)
        except ConsentGateError as exc:
            return fail(name, first_line(exc),
                         "run `python -m provisioning calibrate-thermal`")
        assert t.source is not None  # checked above: not synthetic, so a source is set
        thermal = ThermalSource(t.source)
        try:
            thermal.open()
            frames = [thermal.read() for _ in range(5)]
        except ConsentGateError as exc:
            return fail(name, f"{t.source!r}: {first_line(exc)}",
                         "check the thermal camera's cable and radiometric (Y16) mode")
        finally:
            thermal.close()
    h, w = frames[0].shape
    if (w, h) != cal.thermal_size:
        return fail(name, f"frames are {w}x{h}, calibration is for "
                     f"{cal.thermal_size[0]}x{cal.thermal_size[1]}",
                     "set the camera to the calibrated mode or recalibrate")
    lo, hi = cal.valid_range_ck
    stack = np.stack(frames)
    saturated = float(np.mean((stack <= lo) | (stack >= hi)))
    median_c = float(ck_to_c(np.median(stack)))
    if saturated > 0.01 or not -20.0 <= median_c <= 60.0:
        return fail(name, f"frames out of range (median {median_c:.1f} C, "
                     f"{saturated:.1%} saturated)", "check the camera's radiometric mode and "
                     "gain; recalibrate")
    x, y, bw, bh = cal.blackbody_roi
    reads = ck_to_c(stack[:, y:y + bh, x:x + bw].reshape(len(frames), -1).mean(axis=1))
    err = float(np.max(np.abs(reads - cal.blackbody_c)))
    if err > t.blackbody_max_drift_c:
        return fail(name, f"blackbody not seen at its set point (off by {err:.2f} C)",
                     "check the blackbody is on, in view and stable; recalibrate if moved")
    detail = (f"{w}x{h}, scene median {median_c:.1f} C, blackbody within {err:.2f} C of "
              f"{cal.blackbody_c:g} C")
    if synthetic:
        return [CheckResult(name, "pass", "SIMULATED: frames of the synthetic demo scene, not "
                            "a thermal camera (" + detail + ")",
                            "for a real gate set thermal.source to the radiometric camera and "
                            "run calibrate-thermal", simulated=True,
                            simulator="the synthetic demo scene")]
    return passed(name, detail)
