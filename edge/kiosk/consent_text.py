"""The consent text the traveller reads before opting in, with its version.

The text is plain words and names: the purpose, what is stored, how long, how to withdraw, and
the staffed lane as the equal alternative. The version is a hash of the text, so an enrolment
records exactly which words the traveller accepted, and a page showing an older text is refused.
"""

from __future__ import annotations

import hashlib
import math
from typing import TypedDict


class Section(TypedDict):
    id: str
    title: str
    body: str


class ConsentTextDoc(TypedDict):
    """What `consent_text` returns (the kiosk's ConsentText response)."""

    version: str
    title: str
    sections: list[Section]
    retention_hours: int


# what each way of boarding means, in the traveller's words (a token or both gate adds these)
MATCHING_WORDS = {
    "gallery": "Face only: the gate recognises you by comparing your face with the templates "
               "of the travellers of this flight who said yes.",
    "token": "Face and your own key: your template is locked with a key that only you get, as "
             "a QR code on your receipt. We keep no copy of the key. The gate can look at "
             "your template only while you show the code, and compares your face with yours "
             "alone.",
}


def consent_text(max_retention_s: int, consent_ttl_s: int,
                 delete_on_boarding: bool, matching: str = "gallery") -> ConsentTextDoc:
    """The consent text as sections; hours are rounded up for the traveller. A `token` or
    `both` gate (settings matching.mode) says how the gate finds the traveller, and in `both`
    that the traveller chooses."""
    hours = max(1, math.ceil(min(max_retention_s, consent_ttl_s) / 3600))
    boarding = (" It is deleted as soon as you have boarded, or earlier." if delete_on_boarding
                else "")
    sections: list[Section] = [
        {"id": "purpose", "title": "Why",
         "body": "To let you through this boarding gate by face instead of showing your boarding "
                 "pass. It is used for this flight at this gate only."},
        {"id": "stored", "title": "What we keep",
         "body": "A face template (a list of numbers made from your photo) and a coded version of "
                 "your booking reference. Your photo itself is not kept. Nothing is sent off "
                 "this device except anonymous counts."},
        {"id": "retention", "title": "How long",
         "body": f"At most {hours} hours.{boarding}"},
        {"id": "withdraw", "title": "Changing your mind",
         "body": "You can withdraw at any time at this kiosk with your booking reference or the "
                 "withdrawal code on your receipt. Your template is deleted at once."},
        {"id": "alternative", "title": "If you say no",
         "body": "Use the staffed lane: an agent checks your boarding pass as usual. Saying no "
                 "changes nothing else for your journey."},
    ]
    if matching in ("token", "both"):
        ways = [MATCHING_WORDS["token"]] if matching == "token" else [
            "You choose one of two ways.", MATCHING_WORDS["gallery"], MATCHING_WORDS["token"]]
        sections.insert(2, {"id": "matching", "title": "How the gate finds you",
                            "body": " ".join(ways)})
    canonical = "\n".join(f"{s['id']}:{s['body']}" for s in sections)
    version = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return {"version": version, "title": "Boarding by face: your choice", "sections": sections,
            "retention_hours": hours}
