"""The token-mode receipt: the traveller's boarding key as a QR code and a printable PDF.

Made in memory from the token text, sent once in the enrolment's response and never kept: the
QR code is an SVG data URI (segno; alphanumeric mode, error correction M), the PDF an 80 mm
receipt (matplotlib's PDF backend, the QR drawn as vector squares so it prints sharp) with the
key's text for typing in by hand, its validity, what it is for and the withdrawal
code, in the traveller's language (the `receipt` words of edge.kiosk.i18n; English by
default). Nothing here writes a file, logs or caches the token.
"""

from __future__ import annotations

import base64
import io
import textwrap
from typing import Any

import segno

from edge.kiosk import i18n

QR_ERROR = "m"


def qr_code(token: str) -> segno.QRCode:
    return segno.make(token, error=QR_ERROR, micro=False)


def qr_svg_data_uri(token: str, scale: int = 6) -> str:
    """The token's QR code as an SVG data URI (for an <img> on the receipt screen)."""
    return str(qr_code(token).svg_data_uri(scale=scale, border=4, dark="#000", light="#fff"))


def warm_up() -> None:
    """Import the PDF writer ahead of the first token receipt (about 2 s cold: a kiosk serving
    a token or both gate runs this on a thread at start, so no traveller waits for it)."""
    receipt_pdf("CG1." + "0" * 32 + "." + "A" * 52 + ".AAAAAAAA", valid_until="-", scope="-",
                gate="-", withdrawal_code="-")  # not a key: fonts and backend loaded


def receipt_figure(token: str, *, valid_until: str, scope: str, gate: str,
                   withdrawal_code: str, words: dict[str, str] | None = None) -> Any:
    """The receipt as a matplotlib Figure (80 mm wide): the QR code, the key in words, its
    validity and the withdrawal code, in the language of `words` (English by default)."""
    w = words or i18n.words(i18n.DEFAULT)["receipt"]
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.collections import PatchCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows = [list(row) for row in qr_code(token).matrix_iter(scale=1, border=4)]
    n = len(rows)
    fig = Figure(figsize=(3.15, 5.8))
    FigureCanvasPdf(fig)
    fig.text(0.5, 0.96, w["pdf_title"], ha="center", va="top", size=13, weight="bold")
    fig.text(0.5, 0.91, f"Gate {gate}  -  {scope}", ha="center", va="top", size=8)
    ax = fig.add_axes((0.12, 0.44, 0.76, 0.43))
    squares = [Rectangle((x, n - 1 - y), 1, 1) for y, row in enumerate(rows)
               for x, dark in enumerate(row) if dark]
    ax.add_collection(PatchCollection(squares, facecolor="black", edgecolor="none"))
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.text(0.5, 0.415, "\n".join(textwrap.wrap(token, 34)), ha="center", va="top", size=6.5,
             family="monospace")
    fig.text(0.06, 0.30, textwrap.fill(w["pdf_valid"].format(until=valid_until), 52),
             ha="left", va="top", size=7)
    fig.text(0.06, 0.10, textwrap.fill(w["pdf_withdraw"].format(code=withdrawal_code), 52),
             ha="left", va="top", size=7)
    return fig


def receipt_pdf(token: str, *, words: dict[str, str] | None = None, **fields: str) -> bytes:
    """The receipt (see receipt_figure) as a one-page PDF, in memory."""
    out = io.BytesIO()
    receipt_figure(token, words=words, **fields).savefig(out, format="pdf")
    return out.getvalue()


def receipt_pdf_b64(token: str, *, words: dict[str, str] | None = None, **fields: str) -> str:
    return base64.b64encode(receipt_pdf(token, words=words, **fields)).decode("ascii")
