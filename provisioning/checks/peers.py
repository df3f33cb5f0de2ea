"""The box's peers: the gate controller answers (on a real gate driver, or marked simulated),
central is reachable and admits this device."""

from __future__ import annotations

from foundation.errors import ConsentGateError
from provisioning.checks.result import CheckResult, VerifyContext, fail, first_line, passed


def check_gate(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.probes import probe_gate

    g = ctx.device.settings.gate
    config = ctx.device.settings_file
    try:
        detail = probe_gate(ctx.device.settings, ctx.network_timeout_s)
    except ConsentGateError as exc:
        return fail("gate controller", f"{g.command_endpoint}: {first_line(exc)}",
                     f"start it (`systemctl start consentgate-gate`, or `python -m "
                     f"gate_controller run --config {config}`) and check gate.command_endpoint")
    if g.driver.type == "simulated":  # it answered, but drives no gate: nothing opens or locks
        return [CheckResult("gate controller", "pass", f"SIMULATED: the simulated gate driver, "
                            f"not a gate ({detail})",
                            f'for a real gate set [gate] driver = {{ type = "serial_relay", '
                            f'serial_port = "/dev/ttyUSB0" }} in {config.name}', simulated=True,
                            simulator="the simulated gate driver")]
    return passed("gate controller", detail)


def check_central(ctx: VerifyContext) -> list[CheckResult]:
    from provisioning.probes import probe_central

    t = ctx.device.settings.telemetry
    if not t.enabled:
        return [CheckResult("central", "skip", "telemetry disabled")]
    central_key = t.central_public_key_file or ctx.device.layout.central_public_key
    if not central_key.is_file():
        return fail("central", f"{t.endpoints[0]}: not tried, central's public key "
                     f"({central_key}) is not installed",
                     "run `python -m provisioning import-central-key FILE`")
    try:
        detail = probe_central(ctx.device, ctx.network_timeout_s)
    except ConsentGateError as exc:
        return fail("central", f"{t.endpoints[0]}: {first_line(exc)}",
                     "check the network route to central, telemetry.central_endpoint and that "
                     "central has this device's public key")
    return passed("central", detail)
