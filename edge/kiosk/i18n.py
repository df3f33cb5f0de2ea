"""The traveller's words in every language the kiosk offers: consent text, screen, receipt, lanes.

One JSON file a language in `static/i18n/` (`en.json`, `fr.json`, `de.json`), each with the same
keys and the same `{placeholders}` as English (checked when loaded: a translation that lacks a
key, adds one or drops a placeholder is refused with `TranslationError`). English is the
default. `edge.kiosk.consent_text` versions all languages together, so changing any translation
changes the version every consent records.
"""

from __future__ import annotations

import functools
import json
import re
import string
from importlib import resources
from typing import Any

from edge.kiosk.errors import KioskError
from foundation.errors import ConsentGateError

DEFAULT = "en"
PARTS = ("consent", "screen", "receipt", "lanes")
_CODE = re.compile(r"[a-z]{2}")


class TranslationError(ConsentGateError):
    """A translation file is missing, unreadable or does not match English's keys."""


class UnknownLanguageError(KioskError):
    status, code = 422, "unknown_language"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _check(code: str, data: Any, english: dict[str, Any]) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise TranslationError(f"i18n/{code}.json: needs a 'name' and the parts {PARTS}")
    for part in PARTS:
        ours, theirs = data.get(part), english[part]
        if not isinstance(ours, dict) or set(ours) != set(theirs):
            raise TranslationError(f"i18n/{code}.json: part '{part}' must have exactly the keys "
                                   f"of en.json: {sorted(theirs)}")
        for key, text in ours.items():
            if not isinstance(text, str) or not text.strip():
                raise TranslationError(f"i18n/{code}.json: {part}.{key} must be non-empty text")
            if _fields(text) != _fields(theirs[key]):
                raise TranslationError(f"i18n/{code}.json: {part}.{key} must use the "
                                       f"placeholders {sorted(_fields(theirs[key]))}")


@functools.cache
def catalogue() -> dict[str, dict[str, Any]]:
    """Every language's words, English first, then by code; checked against English."""
    folder = resources.files("edge.kiosk") / "static" / "i18n"
    raw: dict[str, Any] = {}
    try:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            code = entry.name.removesuffix(".json")
            if entry.name.endswith(".json") and _CODE.fullmatch(code):
                raw[code] = json.loads(entry.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise TranslationError(f"the kiosk's translations cannot be read ({exc}): reinstall "
                               "the package") from None
    if DEFAULT not in raw:
        raise TranslationError("i18n/en.json is missing: reinstall the package")
    _check(DEFAULT, raw[DEFAULT], {p: raw[DEFAULT].get(p) or {} for p in PARTS})
    for code, data in raw.items():
        _check(code, data, raw[DEFAULT])
    return {DEFAULT: raw[DEFAULT], **{c: d for c, d in raw.items() if c != DEFAULT}}


def languages() -> list[dict[str, str]]:
    """[{code, label}] in the order the screen offers them (each label in its own language)."""
    return [{"code": code, "label": data["name"]} for code, data in catalogue().items()]


def words(language: str) -> dict[str, Any]:
    """The words of one language; UnknownLanguageError (422) for a language not offered."""
    found = catalogue().get(language)
    if found is None:
        offered = ", ".join(catalogue())
        raise UnknownLanguageError(f"that language is not offered: choose one of {offered}")
    return found
