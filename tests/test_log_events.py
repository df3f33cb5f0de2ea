"""Log events follow one style: snake_case event names, logger names from `__name__`."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for pkg in ("foundation", "wire", "edge", "gate_controller", "central", "demo",
                         "provisioning") for p in (ROOT / pkg).rglob("*.py")]
CALL = re.compile(r"\blog\.(?:debug|info|warning|error|exception|critical)\(\s*\"([^\"]*)\"")
LOGGER = re.compile(r"get_logger\(([^)]*)\)")
SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def test_event_names_are_snake_case():
    wrong = sorted(f"{p.relative_to(ROOT)}: {name}" for p in SOURCES
                   for name in CALL.findall(p.read_text()) if not SNAKE.fullmatch(name))
    assert not wrong, "\n".join(wrong)


def test_logger_names_come_from_the_module():
    wrong = sorted(f"{p.relative_to(ROOT)}: get_logger({arg})" for p in SOURCES
                   for arg in LOGGER.findall(p.read_text()) if arg.strip() not in ("__name__", ""))
    assert not wrong, "\n".join(wrong)
