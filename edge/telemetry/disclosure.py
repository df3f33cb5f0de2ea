"""Statistical disclosure control applied to a window before it leaves the box.

1. Optional Laplace noise (scale 1/epsilon per field, sensitivity 1), rounded and clamped at 0.
2. Primary suppression: any count in 1..k-1 is published as suppressed (None); 0 and >= k are
   published as they are.
3. Secondary suppression: for each additive relation `total = part + part + ...` that holds
   between published fields, a relation with exactly one suppressed cell would let a reader
   recover it by subtraction, so one more cell of that relation is suppressed (the smallest
   non-zero unsuppressed one, else a zero one), repeated until no relation has exactly one.

   Some relations involve a cell that is never published but can be derived by subtraction:
   `matched = gates_opened + matched_held` (travellers matched but held, e.g. by a thermal
   referral), and `not_matched = wrong_flight + not_enrolled` (wrong_flight counts the
   staffed-lane decisions for travellers enrolled for another flight). Such a derived cell is
   hidden when it is in 1..k-1, so a published pair whose difference is small gets one of its
   two cells suppressed too.

Noise is applied before suppression, so suppression only post-processes noisy values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from wire.telemetry import COUNT_FIELDS

# Exact additive relations between count fields: every traveller presented at the gate gets one
# decision, matched (opted in), not matched (sent to the staffed lane) or a presentation attack
# (PAD: sent to staff before any gallery search, so neither matched nor not matched).
RELATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("presented", ("matched", "not_matched", "presentation_attacks")),
    ("matched", ("gates_opened", "matched_held")),
    ("not_matched", ("wrong_flight", "not_enrolled")),
)

# Cells never published, derivable from published ones: name -> (minuend, subtrahend).
DERIVED: dict[str, tuple[str, str]] = {
    "matched_held": ("matched", "gates_opened"),
    "not_enrolled": ("not_matched", "wrong_flight"),
}


def laplace_noise(counts: Mapping[str, int], epsilon: float,
                  rng: random.Random) -> dict[str, int]:
    """Each count plus Laplace(0, 1/epsilon) noise, rounded to a whole number >= 0."""
    if epsilon <= 0:
        raise ValueError("epsilon must be > 0")
    scale = 1.0 / epsilon
    out = {}
    for name, value in counts.items():
        u = rng.random() - 0.5
        while abs(u) >= 0.5:  # log(0) guard: random() can return exactly 0.0
            u = rng.random() - 0.5
        noise = -scale * math.copysign(1.0, u) * math.log(1.0 - 2.0 * abs(u))
        out[name] = max(0, round(value + noise))
    return out


def suppress(counts: Mapping[str, int], k: int,
             relations: tuple[tuple[str, tuple[str, ...]], ...] = RELATIONS
             ) -> dict[str, int | None]:
    """Primary and secondary suppression; suppressed cells become None."""
    if k < 1:
        raise ValueError("k must be >= 1")
    values = dict(counts)
    for name, (minuend, subtrahend) in DERIVED.items():
        if minuend in values and subtrahend in values:
            values[name] = max(0, int(values[minuend]) - int(values[subtrahend]))
    out: dict[str, int | None] = {
        name: (None if 0 < value < k else int(value)) for name, value in values.items()}
    changed = True
    while changed:
        changed = False
        for total, parts in relations:
            cells = (total, *parts)
            if any(c not in out for c in cells):
                continue
            hidden = [c for c in cells if out[c] is None]
            if len(hidden) != 1:
                continue
            shown = [c for c in cells if out[c] is not None and c not in DERIVED]
            if not shown:
                continue
            nonzero = sorted((c for c in shown if out[c]), key=lambda c: (out[c], c))
            victim = nonzero[0] if nonzero else shown[0]
            out[victim] = None
            changed = True
    return {name: value for name, value in out.items() if name not in DERIVED}


def apply_disclosure_control(counts: Mapping[str, int], k: int, epsilon: float | None,
                             rng: random.Random | None = None) -> dict[str, int | None]:
    """What may be published for one window's raw counts (fields in COUNT_FIELDS order)."""
    raw = {name: int(counts.get(name, 0)) for name in COUNT_FIELDS}
    if epsilon is not None:
        raw = laplace_noise(raw, epsilon, rng or random.SystemRandom())
    return suppress(raw, k)
