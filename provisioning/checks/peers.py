"""The box's peers: the gate controller answers, central is reachable and admits this device."""

from __future__ import annotations

from foundation.errors import ConsentGateError
from provisioning.checks.result import CheckResult, VerifyContext, fail, first_line, passed


def check_gate(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.probes import probe_gate

    g = ctx.device.settings.gate
    try:
        detail = probe_gate(ctx.device.settings, ctx.network_timeout_s)
    except ConsentGateError as exc:
        return fail("gate controller", f"{g.command_endpoint}: {first_line(exc)}",
                     "start it (`python -m gate_controller run`) and check gate.command_endpoint")
    return passed("gate controller", detail)


def check_central(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.probes import probe_central

    t = ctx.device.settings.telemetry
    if not t.enabled:
        return [CheckResult("central", "skip", "telemetry disabled")]
    central_key = t.central_public_key_file or ctx.device.layout.central_public_key
    if not central_key.is_file():
        return fail("central", f"{t.central_endpoint}: not tried, central's public key "
                     f"({central_key}) is not installed",
                     "run `python -m provisioning import-central-key FILE`")
    try:
        detail = probe_central(ctx.device, ctx.network_timeout_s)
    except ConsentGateError as exc:
        return fail("central", f"{t.central_endpoint}: {first_line(exc)}",
                     "check the network route to central, telemetry.central_endpoint and that "
                     "central has this device's public key")
    return passed("central", detail)
