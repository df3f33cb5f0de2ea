"""Presentation-attack detection: which PAD the daemon will run on this box, said plainly.

The same words the lane board shows (edge.composition.pad_setup.pad_summary), so verify never
claims PAD where none runs: `thermal` passes (it rests on the thermal camera check above);
`none` where PAD is required fails (every traveller would go to the staffed lane); `none` where
it is not required is reported as a skip that says grants rest on the face match alone.
"""

from __future__ import annotations

from provisioning.checks.result import CheckResult, VerifyContext, fail

NAME = "presentation attack detection"
ADD_CAMERA = ("add a radiometric thermal camera (thermal.source, then `python -m provisioning "
              "calibrate-thermal`) for thermal PAD; no visible-only PAD model is adopted "
              "(docs/rooms/screening.md)")


def check_pad(ctx: VerifyContext) -> list[CheckResult]:
    from edge.composition.pad_setup import pad_summary

    summary = pad_summary(ctx.device.settings)
    if summary["active"] == "thermal":
        return [CheckResult(NAME, "pass", f"thermal PAD active: {summary['message']} (it uses "
                            "the thermal camera checked above)")]
    if summary["required"]:
        return fail(NAME, "NONE running, but pad.required: every traveller will be sent to the "
                    "staffed lane", ADD_CAMERA + ", or set pad.required = false")
    return [CheckResult(NAME, "skip", "NONE: no presentation-attack detection runs on this box; "
                        "grants rest on the face match alone (a photo or screen of an enrolled "
                        "traveller is not detected)", ADD_CAMERA)]
