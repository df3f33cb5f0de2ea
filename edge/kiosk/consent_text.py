"""The consent text the traveller reads before opting in, in their language, with its version.

The text is plain words and names: the purpose, what is stored, how long, how to withdraw, and
the staffed lane as the equal alternative. Its words come from `edge.kiosk.i18n` (one file a
language). The version is a hash over every language's consent text, screen, receipt and lane
words together, so it changes when any translation changes; an enrolment records the version
and the language the traveller read (`consent_record`), and a page showing an older text is
refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, TypedDict

from edge.kiosk import i18n


class Section(TypedDict):
    id: str
    title: str
    body: str


class ConsentTextDoc(TypedDict):
    """What `consent_text` returns (the kiosk's ConsentText response)."""

    version: str
    language: str
    title: str
    sections: list[Section]
    retention_hours: int
    languages: list[dict[str, str]]
    screen: dict[str, str]
    receipt: dict[str, str]
    lanes: dict[str, str]


# what each way of boarding means, in English (GET /api/matching; the consent text has them in
# every language)
MATCHING_WORDS = {way: i18n.words(i18n.DEFAULT)["consent"][f"matching_{way}"]
                  for way in ("gallery", "token")}


def _sections(c: dict[str, str], hours: int, delete_on_boarding: bool,
              matching: str) -> list[Section]:
    retention = c["retention"].format(hours=hours)
    if delete_on_boarding:
        retention += " " + c["retention_boarding"]
    sections: list[Section] = [
        {"id": sid, "title": c[f"{sid}_title"], "body": retention if sid == "retention" else c[sid]}
        for sid in ("purpose", "stored", "retention", "withdraw", "alternative")]
    if matching in ("token", "both"):
        ways = [c["matching_token"]] if matching == "token" else [
            c["matching_choose"], c["matching_gallery"], c["matching_token"]]
        sections.insert(2, {"id": "matching", "title": c["matching_title"],
                            "body": " ".join(ways)})
    return sections


def hours_kept(max_retention_s: int, consent_ttl_s: int) -> int:
    """The retention the traveller is told, in whole hours rounded up."""
    return max(1, math.ceil(min(max_retention_s, consent_ttl_s) / 3600))


def text_version(max_retention_s: int, consent_ttl_s: int, delete_on_boarding: bool,
                 matching: str = "gallery") -> str:
    """16 hex digits over every language's rendered consent text and traveller words."""
    hours = hours_kept(max_retention_s, consent_ttl_s)
    everything: dict[str, Any] = {}
    for code, data in i18n.catalogue().items():
        everything[code] = {"title": data["consent"]["title"],
                            "sections": _sections(data["consent"], hours, delete_on_boarding,
                                                  matching),
                            **{part: data[part] for part in ("screen", "receipt", "lanes")}}
    canonical = json.dumps(everything, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def consent_text(max_retention_s: int, consent_ttl_s: int, delete_on_boarding: bool,
                 matching: str = "gallery", language: str = i18n.DEFAULT) -> ConsentTextDoc:
    """The consent text as sections in `language`; hours are rounded up for the traveller. A
    `token` or `both` gate (settings matching.mode) says how the gate finds the traveller, and
    in `both` that the traveller chooses. The screen, receipt and lane words of the same
    language come with it (the page shows them to the traveller)."""
    data = i18n.words(language)
    hours = hours_kept(max_retention_s, consent_ttl_s)
    return {"version": text_version(max_retention_s, consent_ttl_s, delete_on_boarding, matching),
            "language": language, "title": data["consent"]["title"],
            "sections": _sections(data["consent"], hours, delete_on_boarding, matching),
            "retention_hours": hours, "languages": i18n.languages(),
            "screen": dict(data["screen"]), "receipt": dict(data["receipt"]),
            "lanes": dict(data["lanes"])}


def consent_record(purpose: str, version: str, language: str) -> str:
    """The consent row's purpose with the text version and language the traveller agreed to,
    e.g. "face boarding at gate G1; consent text 0123456789abcdef (fr)" (at most 128 chars:
    a gate id has at most 32)."""
    return f"{purpose}; consent text {version} ({language})"
