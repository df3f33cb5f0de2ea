"""What a check gets and gives: `VerifyContext` in, a list of `CheckResult` out.

A check is a function `(VerifyContext) -> list[CheckResult]`; `fail`, `passed` and
`first_line` are the small helpers every check module shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from foundation.clock import Clock
from provisioning.device import Device

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""
    simulated: bool = False  # passed against a simulator (the synthetic scene), not hardware
    simulator: str = ""  # what stood in for the hardware, named in verify's verdict

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


def fail(name: str, detail: str, fix: str) -> list[CheckResult]:
    return [CheckResult(name, "fail", detail, fix)]


def passed(name: str, detail: str) -> list[CheckResult]:
    return [CheckResult(name, "pass", detail)]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
