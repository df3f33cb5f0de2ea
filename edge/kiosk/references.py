"""Boarding references typed or scanned at the kiosk: a booking reference or IATA BCBP text.

`parse_reference` returns the booking reference (PNR) used as the consent key and, for a
boarding pass, the flight scope (carrier, flight number, day of year). The passenger name and
seat in the barcode are read past and never kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.kiosk.errors import BadReferenceError

_PNR = re.compile(r"^[A-Z0-9]{5,8}$")
_BCBP_MIN = 58  # mandatory unique + first repeated block (IATA Resolution 792)
_HELP = ("enter the 6-character booking reference, or scan the boarding pass barcode "
         "(IATA BCBP text starting with 'M')")


@dataclass(frozen=True)
class BoardingReference:
    booking_ref: str                 # PNR, upper case
    scope: str | None = None         # e.g. "LH0400/123" (carrier+flight / day of year)

    def __repr__(self) -> str:       # references are personal data: keep them out of reprs
        return "BoardingReference(<redacted>)"


def _bcbp(text: str) -> BoardingReference:
    if len(text) < _BCBP_MIN:
        raise BadReferenceError("the boarding pass barcode is incomplete: scan it again, or "
                                "type the booking reference")
    if text[1] not in "123456789":
        raise BadReferenceError("the boarding pass barcode is not IATA BCBP text: " + _HELP)
    pnr = text[23:30].strip().upper()
    carrier = text[36:39].strip().upper()
    flight = text[39:44].strip().upper()
    day = text[44:47].strip()
    if not _PNR.match(pnr):
        raise BadReferenceError("the boarding pass barcode has no readable booking reference: "
                                "type the booking reference instead")
    if not (re.fullmatch(r"[A-Z0-9]{2,3}", carrier) and re.fullmatch(r"[0-9]{1,4}[A-Z]?", flight)
            and re.fullmatch(r"[0-9]{1,3}", day) and 1 <= int(day) <= 366):
        raise BadReferenceError("the boarding pass barcode has no readable flight and date: "
                                "scan it again, or type the booking reference")
    return BoardingReference(pnr, f"{carrier}{flight}/{int(day):03d}")


def parse_reference(raw: str) -> BoardingReference:
    """Parse a typed booking reference or scanned BCBP text; BadReferenceError if neither."""
    if not isinstance(raw, str):
        raise BadReferenceError("no boarding reference: " + _HELP)
    text = raw.strip("\r\n\t ")
    if not text:
        raise BadReferenceError("no boarding reference: " + _HELP)
    if len(text) > 512 or not text.isprintable():
        raise BadReferenceError("the boarding reference is not readable: " + _HELP)
    if text[0] == "M" and len(text) > 8:
        return _bcbp(text)
    pnr = text.replace(" ", "").upper()
    if not _PNR.match(pnr):
        raise BadReferenceError("that is not a booking reference: " + _HELP)
    return BoardingReference(pnr)
