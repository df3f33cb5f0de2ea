"""What leaves the box stays anonymous: small counts suppressed, windows long enough."""

from __future__ import annotations

from provisioning.checks.result import CheckResult, VerifyContext, fail, passed

MIN_K = 5          # statistical offices' usual threshold for publishing a count
MIN_WINDOW_S = 60  # shorter windows would time individual travellers


def check_privacy(ctx: VerifyContext) -> list[CheckResult]:
    """What leaves the box must stay anonymous: suppression and window length."""
    t = ctx.device.settings.telemetry
    if not t.enabled:
        return [CheckResult("telemetry privacy", "skip", "telemetry disabled")]
    if t.k_anonymity < MIN_K:
        return fail("telemetry privacy", f"telemetry.k_anonymity = {t.k_anonymity}: counts "
                     f"from 1 to {MIN_K - 1} would leave the box",
                     f"set telemetry.k_anonymity to {MIN_K} or more in the settings file")
    if t.window_s < MIN_WINDOW_S:
        return fail("telemetry privacy", f"telemetry.window_s = {t.window_s}: windows this "
                     "short time individual travellers",
                     f"set telemetry.window_s to {MIN_WINDOW_S} or more (default 300)")
    noise = f", Laplace noise epsilon {t.laplace_epsilon}" if t.laplace_epsilon else ""
    return passed("telemetry privacy", f"counts below {t.k_anonymity} suppressed, "
                                      f"{t.window_s} s windows{noise}")
