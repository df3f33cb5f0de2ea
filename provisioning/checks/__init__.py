"""The self-test's individual checks: each looks at one part of the box and says how to fix it.

A check is a function `(VerifyContext) -> list[CheckResult]`. Checks talk to the real parts
(key files, model files, onnxruntime, cameras, the store, the gate controller, central); which
device they reach is decided by the settings alone, so the same checks run against a bench
device or the simulators. No check writes anything.

One module per part: `keys` (key files, kiosk TLS), `models` (model files, providers),
`cameras` (visible, kiosk and thermal cameras), `pad` (which presentation-attack detection
runs), `store`, `peers` (gate controller, central), `privacy` (what telemetry may publish);
`result` holds the types every check shares. This module lists them in the order `verify`
runs them (ALL_CHECKS).
"""

from __future__ import annotations

from provisioning.checks.cameras import check_cameras, check_thermal, measure_source
from provisioning.checks.keys import check_keys, check_tls
from provisioning.checks.models import DETECTOR_MODELS, GPU_PROVIDERS, check_models, check_providers
from provisioning.checks.pad import check_pad
from provisioning.checks.peers import check_central, check_gate
from provisioning.checks.privacy import MIN_K, MIN_WINDOW_S, check_privacy
from provisioning.checks.result import Check, CheckResult, Status, VerifyContext
from provisioning.checks.store import check_store

__all__ = ["ALL_CHECKS", "DETECTOR_MODELS", "GPU_PROVIDERS", "MIN_K", "MIN_WINDOW_S", "Check",
           "CheckResult", "Status", "VerifyContext", "check_cameras", "check_central",
           "check_gate", "check_keys", "check_models", "check_pad", "check_privacy",
           "check_providers",
           "check_store", "check_thermal", "check_tls", "measure_source"]

ALL_CHECKS: tuple[tuple[str, Check], ...] = (
    ("keys", check_keys), ("tls", check_tls), ("models", check_models),
    ("providers", check_providers), ("cameras", check_cameras), ("thermal", check_thermal),
    ("pad", check_pad),
    ("store", check_store), ("gate", check_gate), ("central", check_central),
    ("privacy", check_privacy),
)
