"""The token-mode day of `python -m edge demo --matching token`: boarding 1:1 with a key only
the traveller holds (the EDPB's passenger-held-key design; no 1:N search at all).

1. a traveller enrols at the kiosk with their own key (a QR code and a PDF on the receipt), holds
   the QR code up to the gate camera and boards (the box unseals that one template, compares it
   with the face at the 1:1 threshold, wipes it; the passage deletes the sealed template);
2. a traveller who shows no key is sent to the staffed lane: nothing is embedded or compared,
   and the store is unchanged;
3. a traveller enrols with a key, withdraws with the receipt's code, then shows the key: refused
   with a lane alert, no comparison;
4. a traveller shows a key with one character altered: refused as damaged, no comparison.

The keys live only in this process's memory (the traveller's side) and in the QR codes the
synthetic camera shows; the kiosk agent's kept API responses have them redacted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from demo.walks import StepResult

NORMAL_C = 36.6
STEPS = 4  # the steps of the token day (the outcome table lists each)


def alert_said(demo: Any, words: str) -> bool:
    """Whether the lane board shows an alert with `words` (what staff read)."""
    board = demo.agent.call("GET", "board", "/api/board")
    return any(words in a.get("message", "") for a in board.get("alerts", []))


def altered(token: str) -> str:
    version, consent, key, check = token.split(".")
    swap = "A" if key[5] != "A" else "B"
    return f"{version}.{consent}.{key[:5]}{swap}{key[6:]}.{check}"


def play_token_day(demo: Any, step_ok: Callable[[], bool]) -> list[StepResult]:
    results: list[StepResult] = []
    scene = demo.stage.scene
    n = len(scene.renderer.photos)
    store = demo.daemon.store

    def enrol_key(photo: int, reference: str) -> dict:
        return dict(demo.agent.enrol_receipt(scene.renderer.photos[photo], reference,
                                             matching="token"))

    def refused_key(label: str, person: int, token: str, reason: str, alert: str,
                    note: str) -> StepResult:
        """A walk showing `token` that must be refused with `reason` and a lane alert."""
        scene.show_with_next_walk(token)
        r = demo.walk(label, person, NORMAL_C, "not_matched", board=False)
        said = alert_said(demo, alert)
        r.notes.append(f"lane alert: {note}" if said else "NO LANE ALERT")
        r.ok = r.decision == "not_matched" and r.reason == reason and said
        return r

    demo.say("1. traveller 1 enrols at the kiosk with their own key (the QR code on the "
             "receipt is the only copy), shows it to the gate camera and boards")
    receipt = enrol_key(0, "QZTK01")
    scene.show_with_next_walk(receipt.pop("token"))
    r = demo.walk("1 shows the key, boards (1:1)", 0, NORMAL_C, "granted", board=True)
    r.ok = r.decision == "granted" and r.boarded and store.stats()["templates"] == 0
    r.notes.append("sealed template deleted" if store.stats()["templates"] == 0
                   else "TEMPLATE LEFT")
    results.append(r)
    if step_ok():
        demo.say("2. traveller 2 shows no key: staffed lane, nothing compared")
        before = store.stats()
        r = demo.walk("2 no key, staffed lane", 2 % n, NORMAL_C, "not_matched", board=False)
        unchanged = all(before[k] == store.stats()[k]
                        for k in ("active_consents", "templates", "audit_rows"))
        r.notes.append("store unchanged" if unchanged else "STORE CHANGED")
        r.ok = r.decision == "not_matched" and r.reason == "no_token" and unchanged
        results.append(r)
    if step_ok():
        demo.say("3. traveller 3 enrols with a key, withdraws with the receipt's code, then "
                 "shows the withdrawn key")
        receipt = enrol_key(3 % n, "QZTK03")
        demo.agent.withdraw(receipt.pop("withdrawal_code"))
        results.append(refused_key("3 withdrawn key refused", 3 % n, receipt.pop("token"),
                                   "token_withdrawn", "was withdrawn", "key withdrawn"))
    if step_ok():
        demo.say("4. traveller 4 enrols with a key and shows a copy with one character "
                 "altered")
        receipt = enrol_key(4 % n, "QZTK04")
        results.append(refused_key("4 altered key refused", 4 % n,
                                   altered(receipt.pop("token")), "token_invalid",
                                   "damaged or altered", "key damaged"))
    return results
