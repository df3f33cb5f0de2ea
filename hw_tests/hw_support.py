"""The hardware-in-the-loop suite's configuration (`hw.toml`) and its report writers.

`hw.toml` names the real devices on the bench; every section is optional, and a part it does
not name is replaced by its simulator (see hw.example.toml):

    [camera]  source = "/dev/video0" | "rtsp://..." | a video file ; fps = 30 ; unplug = false
    [thermal] source = "/dev/video2" ; calibration = "thermal-calibration.json"
    [gate]    port = "/dev/ttyUSB0" ; lanes = ["A"] ; interactive = false
    [gpu]     expected = true
    [e2e]     photo = "tester.jpg"     (the tester's face, enrolled for the walk-through)

Results are collected per test (outcome, duration, which parts were real, timings) and written
as JUnit XML and a short human summary for the tester's report.
"""

from __future__ import annotations

import datetime as dt
import platform
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(_Section):
    source: str = Field(..., description="OpenCV device index/path, stream URL or video file")
    fps: float = Field(30.0, gt=0, le=240, description="the rate the camera must deliver")
    unplug: bool = Field(False, description="a tester unplugs and replugs it when asked")


class ThermalConfig(_Section):
    source: str = Field(..., description="thermal device (V4L2 Y16), folder or file")
    calibration: Path = Field(..., description="thermal-calibration/1 JSON for this camera")


class GateConfig(_Section):
    port: str = Field(..., description="serial port of the relay/1 board")
    lanes: list[str] = Field(["A"], min_length=1, description="lanes wired to the board")
    baud: int = Field(115200, ge=1200, le=1_000_000)
    interactive: bool = Field(False, description="a tester triggers passage/fire when asked")


class GpuConfig(_Section):
    expected: bool = Field(False, description="the box has a GPU the models must run on")


class E2EConfig(_Section):
    photo: Path = Field(..., description="the walking tester's face photo to enrol")


class HwConfig(_Section):
    camera: CameraConfig | None = None
    thermal: ThermalConfig | None = None
    gate: GateConfig | None = None
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    e2e: E2EConfig | None = None
    path: Path | None = None


class HwConfigError(Exception):
    pass


def load_hw_config(path: Path | None) -> HwConfig:
    """The bench's hw.toml, or an all-simulator config when `path` is None."""
    if path is None:
        return HwConfig()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HwConfigError(f"--hw-config {path} not found (see hw_tests/hw.example.toml)"
                            ) from None
    except tomllib.TOMLDecodeError as exc:
        raise HwConfigError(f"--hw-config {path} is not valid TOML: {exc}") from None
    try:
        cfg = HwConfig.model_validate({**data, "path": path})
    except ValidationError as exc:
        where = "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        raise HwConfigError(f"--hw-config {path}: {where}") from None
    base = Path(path).resolve().parent
    updates = {}
    if cfg.thermal and not cfg.thermal.calibration.is_absolute():
        updates["thermal"] = cfg.thermal.model_copy(
            update={"calibration": base / cfg.thermal.calibration})
    if cfg.e2e and not cfg.e2e.photo.is_absolute():
        updates["e2e"] = cfg.e2e.model_copy(update={"photo": base / cfg.e2e.photo})
    return cfg.model_copy(update=updates)


# -- results and reports ------------------------------------------------------------------------
@dataclass
class CaseResult:
    nodeid: str
    outcome: str  # passed, failed, skipped, error
    duration_s: float
    message: str = ""
    parts: dict[str, str] = field(default_factory=dict)     # part -> "real: ..." | "simulator"
    timings: dict[str, float] = field(default_factory=dict)


def write_junit(results: list[CaseResult], path: Path) -> None:
    suite = ET.Element("testsuite", name="hw_tests", tests=str(len(results)),
                       failures=str(sum(r.outcome == "failed" for r in results)),
                       errors=str(sum(r.outcome == "error" for r in results)),
                       skipped=str(sum(r.outcome == "skipped" for r in results)),
                       time=f"{sum(r.duration_s for r in results):.3f}",
                       timestamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                       hostname=platform.node())
    for r in results:
        module, _, name = r.nodeid.partition("::")
        case = ET.SubElement(suite, "testcase", classname=module.replace("/", ".")
                             .removesuffix(".py"), name=name, time=f"{r.duration_s:.3f}")
        if r.parts or r.timings:
            props = ET.SubElement(case, "properties")
            for part, mode in r.parts.items():
                ET.SubElement(props, "property", name=f"part.{part}", value=mode)
            for key, value in r.timings.items():
                ET.SubElement(props, "property", name=f"timing.{key}", value=f"{value:.4g}")
        if r.outcome in ("failed", "error"):
            el = ET.SubElement(case, "failure" if r.outcome == "failed" else "error",
                               message=r.message.splitlines()[0][:300] if r.message else "")
            el.text = r.message
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.message[:300])
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def describe_devices(cfg: HwConfig) -> str:
    parts = [f"camera={cfg.camera.source if cfg.camera else 'simulator'}",
             f"thermal={cfg.thermal.source if cfg.thermal else 'simulator'}",
             f"gate board={cfg.gate.port if cfg.gate else 'simulator (pty)'}",
             f"GPU expected={'yes' if cfg.gpu.expected else 'no'}",
             f"e2e tester photo={'yes' if cfg.e2e else 'no'}"]
    return ", ".join(parts)


def write_summary(results: list[CaseResult], cfg: HwConfig, path: Path) -> str:
    counts = {k: sum(r.outcome == k for r in results)
              for k in ("passed", "failed", "error", "skipped")}
    lines = [
        "# consentgate hardware-in-the-loop summary",
        "",
        f"- when: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.node()} ({platform.machine()}, {platform.system()} "
        f"{platform.release()})",
        f"- hw config: {cfg.path or 'none (every part simulated)'}",
        f"- devices: {describe_devices(cfg)}",
        f"- result: {counts['passed']} passed, {counts['failed']} failed, {counts['error']} "
        f"errors, {counts['skipped']} skipped",
        "",
        "| test | result | parts (real / simulator) | timings |",
        "|---|---|---|---|",
    ]
    for r in results:
        parts = ", ".join(f"{k}: {v}" for k, v in r.parts.items()) or "-"
        timings = ", ".join(f"{k}={v:.4g}" for k, v in r.timings.items()) or "-"
        outcome = r.outcome + (f" ({r.message.splitlines()[0][:80]})"
                               if r.outcome != "passed" and r.message else "")
        lines.append(f"| {r.nodeid.split('::')[-1]} | {outcome} | {parts} | {timings} |")
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text
