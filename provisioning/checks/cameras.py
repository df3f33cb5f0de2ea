"""Cameras: the visible (and kiosk) camera's resolution and frame rate, whether the lane zones
fit that resolution, the thermal camera and its blackbody."""

from __future__ import annotations

import time

from foundation.errors import ConsentGateError
from provisioning.checks.result import CheckResult, VerifyContext, fail, first_line, passed


def measure_source(source, seconds: float) -> tuple[int, float]:
    """(frames, seconds) read from an open FrameSource within `seconds`."""
    frames, _size, took = _measure(source, seconds)
    return frames, took


def _measure(source, seconds: float) -> tuple[int, tuple[int, int] | None, float]:
    """(frames, (width, height) of the first frame or None, seconds) within `seconds`."""
    frames, size, start = 0, None, time.monotonic()
    while time.monotonic() - start < seconds:
        cap = source.read()
        if cap is None:
            break
        if size is None:
            size = (int(cap.image.shape[1]), int(cap.image.shape[0]))
        frames += 1
    return frames, size, time.monotonic() - start


def check_cameras(ctx: VerifyContext) -> list[CheckResult]:
    from edge.daemon import visible_source
    from foundation.settings_sources import describe_source

    s = ctx.device.settings
    cams = {"visible camera": s.capture.visible_source}
    if s.kiosk.enabled and s.kiosk.camera_source:
        cams["kiosk camera"] = s.kiosk.camera_source
    out: list[CheckResult] = []
    for label, spec in cams.items():
        where = describe_source(spec)
        try:
            source = visible_source(s, ctx.clock, spec)
            source.open()
        except ConsentGateError as exc:
            out += fail(label, f"{where} does not open ({first_line(exc)})",
                         "check the cable/URL and capture.visible_source")
            continue
        try:
            frames, size, took = _measure(source, ctx.camera_seconds)
        except ConsentGateError as exc:
            out += fail(label, f"read failed ({first_line(exc)})", "check the camera")
            continue
        finally:
            source.close()
        fps = frames / took if took > 0 else 0.0
        want = s.capture.fps
        res = f"{size[0]}x{size[1]}, " if size else ""
        if frames == 0 or size is None:
            out += fail(label, f"{where} opened but delivered no frames",
                         "check the camera's power and stream settings")
            continue
        if label == "visible camera":
            out += check_zones(s.lanes.lanes, size)
        if fps < 0.8 * want:
            out += fail(label, f"{res}{fps:.1f} fps, configured {want:g}",
                         "lower capture.fps or fix the camera's mode/bandwidth")
        elif spec.type == "synthetic":
            out.append(CheckResult(label, "pass", f"SIMULATED: the synthetic demo scene, not a "
                                   f"camera ({res}{frames} frames, {fps:.1f} fps)",
                                   "for a real gate set capture.visible_source to the camera "
                                   "in settings.toml", simulated=True,
                                   simulator="the synthetic demo scene"))
        else:
            out += passed(label, f"{where}: {res}{frames} frames, {fps:.1f} fps "
                                 f"(configured {want:g})")
    return out


def check_zones(lanes, size: tuple[int, int]) -> list[CheckResult]:
    """Whether each lane's gate zone fits the visible camera's resolution `size`."""
    w, h = size
    problems = [p for p in (lane.zone_fits(w, h) for lane in lanes) if p]
    if problems:
        return fail("lane zones", "; ".join(problems),
                    "match the camera's resolution to the zones, or redraw them (relative "
                    "0..1 zones fit any resolution)")
    kinds = sorted({"relative" if lane.zone_resolution is None else "pixel" for lane in lanes})
    return passed("lane zones", f"{len(lanes)} lane(s), {' and '.join(kinds)} zones fit the "
                                f"camera's {w}x{h}")


# -- thermal -----------------------------------------------------------------------------------
def check_thermal(ctx: VerifyContext) -> list[CheckResult]:
    import numpy as np

    from edge.capture.thermal import ThermalSource, ck_to_c
    from edge.screening.calibration import load_calibration

    s = ctx.device.settings
    t = s.thermal
    name = "thermal camera"
    synthetic = (s.capture.visible_source.type == "synthetic"
                 and (t.source is None or t.source.type == "synthetic"))
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
        thermal = ThermalSource(t.source.spec)
        try:
            thermal.open()
            frames = [thermal.read() for _ in range(5)]
        except ConsentGateError as exc:
            return fail(name, f"{t.source.type} {t.source.spec}: {first_line(exc)}",
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
