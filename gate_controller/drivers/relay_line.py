"""The relay board's line format, shared by the `serial_relay` driver and the board simulator.

A line is printable ASCII `PAYLOAD*CS\\n`, where CS is two upper-case hex digits: the XOR of
the payload's bytes (as in NMEA 0183). At most `MAX_LINE` bytes. A line that breaks any rule
is garbled; the driver then drops the link and reconnects. See README.md,
"serial_relay line protocol".
"""

from __future__ import annotations

MAX_LINE = 96


class GarbledLine(ValueError):
    """A line from the serial link is not a well-formed, checksummed relay/1 line."""


def checksum(payload: bytes) -> int:
    value = 0
    for b in payload:
        value ^= b
    return value


def frame(payload: str) -> bytes:
    raw = payload.encode("ascii")
    return raw + b"*" + f"{checksum(raw):02X}".encode("ascii") + b"\n"


def parse(line: bytes) -> list[str]:
    """One received line (without its newline) -> payload words; GarbledLine if malformed."""
    line = line.rstrip(b"\r")
    if len(line) > MAX_LINE or not line or any(b < 0x20 or b > 0x7E for b in line):
        raise GarbledLine("non-printable, empty or oversized line")
    payload, star, cs = line.rpartition(b"*")
    if not star or len(cs) != 2:
        raise GarbledLine("line has no checksum")
    try:
        expected = int(cs, 16)
    except ValueError:
        raise GarbledLine("checksum is not hex") from None
    if checksum(payload) != expected:
        raise GarbledLine("checksum mismatch")
    words = payload.decode("ascii").split()
    if not words:
        raise GarbledLine("empty payload")
    return words
