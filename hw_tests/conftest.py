"""Fixtures of the hardware-in-the-loop suite: real devices from `--hw-config hw.toml`, else
simulators (a video file or the synthetic scene as camera, simulated radiometric frames, the
relay board simulator on a pseudo-terminal pair, a loopback collector), so CI runs everything.

Each test notes which parts were real and its timings through the `hw` fixture; at the end the
suite writes JUnit XML and a short human summary to --hw-report (default reports/hw).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hw_support import (
    CaseResult,
    HwConfig,
    HwConfigError,
    load_hw_config,
    write_junit,
    write_summary,
)

HERE = Path(__file__).resolve().parent
_RESULTS: dict[str, CaseResult] = {}
_CONFIG: dict[str, HwConfig] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("consentgate hardware-in-the-loop")
    group.addoption("--hw-config", type=Path, default=None,
                    help="hw.toml naming the real devices (default: simulators for all)")
    group.addoption("--hw-report", type=Path, default=Path("reports/hw"),
                    help="folder for junit.xml and summary.md (default reports/hw)")


@pytest.fixture(scope="session")
def hw_config(pytestconfig: pytest.Config) -> HwConfig:
    if "cfg" not in _CONFIG:
        try:
            _CONFIG["cfg"] = load_hw_config(pytestconfig.getoption("--hw-config"))
        except HwConfigError as exc:
            pytest.exit(str(exc), returncode=4)
    return _CONFIG["cfg"]


class HwNotes:
    """What a test records for the report: which parts were real, and timings."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def part(self, name: str, real: str | None) -> None:
        mode = f"real ({real})" if real else "simulator"
        self._node.user_properties.append((f"part.{name}", mode))

    def timing(self, name: str, value: float) -> None:
        self._node.user_properties.append((f"timing.{name}", float(value)))


@pytest.fixture
def hw(request: pytest.FixtureRequest, hw_config: HwConfig) -> HwNotes:
    return HwNotes(request.node)


def _is_hw(nodeid: str) -> bool:
    return nodeid.startswith("hw_tests/") or "/hw_tests/" in nodeid


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _is_hw(report.nodeid):
        return
    res = _RESULTS.get(report.nodeid)
    if res is None:
        res = _RESULTS[report.nodeid] = CaseResult(report.nodeid, "passed", 0.0)
    res.duration_s += report.duration
    for key, value in report.user_properties:
        if key.startswith("part."):
            res.parts[key[5:]] = str(value)
        elif key.startswith("timing."):
            res.timings[key[7:]] = float(value)
    if report.skipped:
        res.outcome = "skipped"
        longrepr = report.longrepr
        res.message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    elif report.failed:
        res.outcome = "failed" if report.when == "call" else "error"
        res.message = str(report.longrepr)[-4000:]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _RESULTS or hasattr(session.config, "workerinput"):
        return
    out = Path(session.config.getoption("--hw-report"))
    if not out.is_absolute():
        out = Path(session.config.rootpath) / out
    results = list(_RESULTS.values())
    cfg = _CONFIG.get("cfg") or HwConfig()
    write_junit(results, out / "junit.xml")
    write_summary(results, cfg, out / "summary.md")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _RESULTS:
        out = config.getoption("--hw-report")
        terminalreporter.write_line(f"hw_tests: report in {out}/junit.xml and {out}/summary.md")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The installed, verified models (`make models`)."""
    import os

    path = Path(os.environ.get("CONSENTGATE_MODEL_DIR", HERE.parent / ".models"))
    if not (path / "fr_feature.onnx").exists():
        pytest.fail(f"models are not installed in {path}: run `make models`")
    return path
