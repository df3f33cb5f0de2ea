"""Step 6 of the demo day: someone holds up a photo of an enrolled traveller.

A traveller enrols at the kiosk; then another person walks up holding a warmed print of that
traveller's photo. The visible camera sees the enrolled face; the thermal frame sees the print's
physics (edge.screening.attack_scene: pad_synth's warmed sheet, ink contrast, fingers, the
holder's head behind it). Thermal PAD on the presenting frames calls it an attack before any
gallery search: no grant, a staff alert without identity, the `presentation_attacks` count.
The row is ok when all of that holds and the enrolled traveller is still enrolled after, their
template untouched: the store holds as many templates as before and the gallery still matches
their photo (searched here, in the demo's own process, after the walk).
"""

from __future__ import annotations

from typing import Any

from demo.walks import StepResult

ATTACK = "print_warm"  # a photo print warmed to skin temperature: a plain "is it warm?" passes it
REFERENCE = "QZPA66"


def presentation_attack_step(demo: Any, photo: int, canthus_c: float) -> StepResult:
    """Enrol the traveller of `photo` at the kiosk, then present a print of them."""
    store, board = demo.daemon.store, demo.daemon.board
    demo.say("6. traveller 6 enrols at the kiosk; someone else then holds up a print of their "
             "photo at the gate")
    demo.enrol(photo, REFERENCE)
    before = store.stats()["templates"]
    alerts = len(board.snapshot()["alerts"])
    r = demo.walks.walk("6 photo of traveller 6 held up", photo, canthus_c,
                        "presentation_attack", board=False, thermal_overlay=ATTACK)
    demo.agent.snapshot(r.step)  # every API response of the run, for the privacy scan
    alerted = [a for a in board.snapshot()["alerts"][alerts:]
               if a["kind"] == "presentation_attack"]
    if alerted:
        r.notes.append("staff alerted")
        demo.say(f"  staff alert: {alerted[0]['message']}")
    kept = store.stats()["templates"] == before
    still = _still_matches(demo, photo)
    r.notes.append("template kept" if kept else "TEMPLATES CHANGED")
    r.notes.append("still enrolled" if still else "NOT ENROLLED ANY MORE")
    demo.say("  traveller 6 is still enrolled: their own face still matches, nothing boarded"
             if kept and still else "  traveller 6's enrolment was touched")
    r.ok = (r.decision == "presentation_attack" and not r.boarded and bool(alerted) and kept
            and still)
    return r


def _still_matches(demo: Any, photo: int) -> bool:
    engine = demo.stage.engine
    chip = demo.stage.scene.renderer.photos[photo]
    faces = engine.detect(chip)
    if not faces:
        return False
    probe = engine.embed(chip, faces[:1])
    try:
        return bool(demo.daemon.gallery.match(probe[0]).matched)
    finally:
        probe.fill(0.0)
