"""`verify`: the box's self-test: a pass/fail table with the fix for each failure.

Runs the checks of provisioning.checks in order (keys, TLS, models, providers, cameras, thermal,
store, gate controller, central). Exit code 0 means fit for service (no failure; skipped checks
are parts the settings turn off), 1 means at least one failure. A check that passed against a
simulator is marked "(sim)" and the verdict names each simulated part and what stood in for it
(the synthetic demo scene for the cameras, the simulated gate driver behind the gate
controller); a run narrowed with --only/--skip never claims the box fit. `--json` prints the
results as one JSON object on the last line instead of the table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import structlog
from rich.progress import Progress
from rich.table import Table

from foundation.clock import Clock, SystemClock
from provisioning.checks import ALL_CHECKS, CheckResult, VerifyContext
from provisioning.common import add_device_args, console, device_from_args, progress_bar, start
from provisioning.device import Device

log = structlog.get_logger(__name__)
CHECK_NAMES = tuple(name for name, _ in ALL_CHECKS)


def run_checks(device: Device, *, clock: Clock | None = None, expect_gpu: bool = False,
               only: Sequence[str] | None = None, skip: Sequence[str] = (),
               camera_seconds: float = 2.0, network_timeout_s: float = 3.0,
               progress: Progress | None = None) -> list[CheckResult]:
    """Run the selected checks; an unexpected error in one check is a failure of that check."""
    ctx = VerifyContext(device=device, clock=clock or SystemClock(), expect_gpu=expect_gpu,
                        camera_seconds=camera_seconds, network_timeout_s=network_timeout_s)
    chosen = [(n, c) for n, c in ALL_CHECKS if (not only or n in only) and n not in skip]
    task = progress.add_task("self-test", total=len(chosen)) if progress else None
    results: list[CheckResult] = []
    for name, check in chosen:
        if progress is not None and task is not None:
            progress.update(task, description=f"checking {name}")
        try:
            got = check(ctx)
        except Exception as exc:  # a broken part must not stop the rest of the self-test
            got = [CheckResult(name, "fail", f"check crashed: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}",
                               "report this to the vendor with the log")]
            log.error("verify_check_crashed", check=name, error=type(exc).__name__)
        results.extend(got)
        if progress is not None and task is not None:
            progress.advance(task)
    failed = sum(1 for r in results if r.status == "fail")
    log.info("verify_done", checks=len(results), failed=failed)
    return results


def fit_for_service(results: Sequence[CheckResult]) -> bool:
    return bool(results) and all(r.ok for r in results)


def verdict(results: Sequence[CheckResult], partial: bool) -> str:
    """The one line under the table: fit or not, and what a pass does not cover."""
    if not fit_for_service(results):
        return "NOT FIT FOR SERVICE: apply the fixes above and run verify again"
    if partial:
        return ("the checks run all passed, but this was a partial self-test (--only/--skip): "
                "run verify without them for the fit-for-service verdict")
    simulated = [f"{r.name}: {r.simulator}" if r.simulator else r.name
                 for r in results if r.simulated]
    if simulated:
        return (f"FIT FOR SERVICE ON SIMULATORS ONLY ({'; '.join(simulated)}): apply each "
                "simulated part's fix above (real cameras, the real gate driver) before this "
                "box runs a gate")
    return "FIT FOR SERVICE"


def results_table(results: Sequence[CheckResult]) -> Table:
    table = Table(title="consentgate self-test")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    table.add_column("fix")
    for r in results:
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}[r.status]
        if r.simulated:
            mark += " (sim)"
        table.add_row(r.name, mark, r.detail, r.fix)
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_device_args(parser)
    parser.add_argument("--expect-gpu", action="store_true",
                        help="fail unless a GPU provider (TensorRT/CUDA) runs the models")
    parser.add_argument("--only", nargs="+", choices=CHECK_NAMES, help="run only these checks")
    parser.add_argument("--skip", nargs="+", choices=CHECK_NAMES, default=[],
                        help="leave these checks out")
    parser.add_argument("--camera-seconds", type=float, default=2.0,
                        help="how long to measure each camera's frame rate")
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="seconds to wait for the gate controller and central")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    out = console()
    with progress_bar(out, disable=args.json) as progress:
        results = run_checks(device, expect_gpu=args.expect_gpu, only=args.only,
                             skip=args.skip, camera_seconds=args.camera_seconds,
                             network_timeout_s=args.timeout, progress=progress)
    fit = fit_for_service(results)
    partial = bool(args.only or args.skip)
    if args.json:
        print(json.dumps({"fit": fit, "partial": partial,
                          "simulated": [r.name for r in results if r.simulated],
                          "results": [r.__dict__ for r in results]}))
    else:
        out.print(results_table(results))
        out.print(verdict(results, partial))
    return 0 if fit else 1
