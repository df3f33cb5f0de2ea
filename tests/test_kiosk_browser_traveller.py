"""The enrolment steps in real Chromium (Debian's, via Playwright), as the agent and the
traveller see them: the booking reference is refused at its own step, before any consent text;
the consent screen has a Back button and a language choice (the traveller's language reaches
the refusal, the receipt and the consent record); an oversize file is refused by the page with
the settings' limit before anything is sent, a photo over the pixel limit is told so; the photo
step shows the agent a crop of the face found, drawn from the local file, while no response
carries pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.browser import Shots, chromium_page
from helpers.browser import log_in as _log_in
from helpers.kiosk import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def page(tmp_path: Path):
    with chromium_page(tmp_path) as pg:
        yield pg


def jpeg_header(width: int, height: int) -> bytes:
    """The start of a JPEG declaring `width`x`height` (SOI, APP0, SOF0), no image data."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = (b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big")
            + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01")
    return b"\xff\xd8" + app0 + sof0 + b"\x00" * 64


def test_reference_back_language_limits_and_preview(page, live_kiosk, faces_dir, tmp_path):
    env, server = live_kiosk
    shot = Shots(page, tmp_path / "screenshots")
    checks: list[dict] = []
    page.on("response", lambda r: checks.append(json.loads(r.text()))
            if r.url.endswith("/api/enrolments/check") and r.status == 200 else None)
    _log_in(page, server.url, "agent1", PASSWORD)

    # the reference is checked at its own step: the consent text is never shown for "12"
    for typed in ("12", "hello world!"):
        page.fill("#enrol-reference", typed)
        page.click("#enrol-reference-next")
        page.wait_for_selector("#reference-error:not([hidden])")
        assert "not a booking reference" in page.inner_text("#reference-error")
        assert page.get_attribute("#enrol-view", "data-step") == "reference"
        assert page.inner_text("#consent-text") == ""
    shot("reference-refused")
    page.fill("#enrol-reference", "ABC123")
    page.fill("#enrol-flight", "XY123")
    page.click("#enrol-reference-next")
    page.wait_for_selector("#enrol-view[data-step=consent]")
    assert page.is_hidden("#reference-error")

    # Back keeps what was typed; the language choice changes every traveller-facing word
    page.click("#consent-back")
    page.wait_for_selector("#enrol-view[data-step=reference]")
    assert page.input_value("#enrol-reference") == "ABC123"
    assert page.input_value("#enrol-flight") == "XY123"
    page.click("#enrol-reference-next")
    page.wait_for_selector("#enrol-view[data-step=consent]")
    assert page.get_attribute("#lang-en", "aria-pressed") == "true"
    page.click("#lang-fr")
    page.wait_for_selector("#consent-text[data-language=fr]")
    assert page.get_attribute("#consent-text", "lang") == "fr"
    assert page.get_attribute("#lang-fr", "aria-pressed") == "true"
    assert "file avec agent" in page.inner_text("#consent-text")
    assert page.inner_text("#consent-accept") == "J'accepte"
    assert page.inner_text("#consent-back") == "Retour"
    shot("consent-fr")
    page.click("#consent-accept")
    page.wait_for_selector("#enrol-view[data-step=photo]")

    # an 18.7 MB file: refused by the page with the settings' limit, never sent
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\x00" * 18_699_998)
    page.set_input_files("#photo-file", str(big))
    page.wait_for_selector("#photo-feedback[data-kind=bad]")
    text = page.inner_text("#photo-feedback")
    assert "18.7 MB" in text and "8 MiB (8.4 MB)" in text and "10 MB" not in text
    assert checks == []
    # a photo over the pixel limit: the server names the limit
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(jpeg_header(6000, 8109))
    page.set_input_files("#photo-file", str(huge))
    page.wait_for_selector("#photo-feedback:has-text('megapixels')")
    text = page.inner_text("#photo-feedback")
    assert "6000x8109 pixels" in text and "limit of 40 megapixels" in text
    shot("pixel-limit")

    # a good photo: the agent sees the face found, cropped here from the local file
    page.set_input_files("#photo-file", str(faces_dir / "img1.jpg"))
    page.wait_for_selector("#photo-feedback[data-ok=true]")
    page.wait_for_selector("#photo-preview:not([hidden]) canvas")
    drawn = page.evaluate("""() => { const c = document.querySelector('#photo-preview canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let lit = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) lit++;
      return { w: c.width, h: c.height, lit, px: d.length / 4 }; }""")
    assert drawn["w"] == 160 and drawn["h"] > 100 and drawn["lit"] > drawn["px"] // 2
    assert page.get_attribute("#photo-preview canvas", "aria-label") == "Face found"
    assert page.locator("img").count() == 0
    assert [set(c) for c in checks] == [{"faces", "ok", "advice", "box", "width", "height"}]
    shot("preview")
    page.click("#enrol-submit")
    page.wait_for_selector("#enrol-view[data-step=receipt]")
    assert page.is_hidden("#photo-preview") and page.locator("canvas").count() == 0
    assert page.get_attribute("#enrol-step-receipt", "lang") == "fr"
    assert page.inner_text("#receipt-title") == "Inscription effectuée"
    assert "veuillez passer par la file avec agent" in page.inner_text("#receipt-lanes").lower()
    shot("receipt-fr")
    (row,) = env.store.consent_summary()
    version = page.get_attribute("#consent-text", "data-version")
    assert row["purpose"].endswith(f"consent text {version} (fr)")
    assert row["scope"].startswith("XY0123/")

    # the next traveller starts in English again; a refusal in German
    page.click("#enrol-done")
    page.fill("#enrol-reference", "XYZ789")
    page.click("#enrol-reference-next")
    page.wait_for_selector("#consent-text[data-language=en]")
    page.click("#lang-de")
    page.wait_for_selector("#consent-text[data-language=de]")
    page.click("#consent-refuse")
    page.wait_for_selector("#enrol-view[data-step=refused]")
    assert page.inner_text("#refused-message") == ("Es wurde nichts gespeichert. Bitte nutzen "
                                                   "Sie die Spur mit Personal.")
    assert len(env.store.consent_summary()) == 1
