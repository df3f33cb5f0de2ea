"""The demo's gate agent at the kiosk: the kiosk's own HTTP API, as the agent's page uses it.

A logged-in session (CSRF header, same-origin `Origin`), photos as base64 JSON: consent text,
photo check, enrolment, receipt, withdrawal by code. Every API response is kept under `api/`
for the privacy scan; the receipt's withdrawal code is redacted there (it is shown once to the
traveller and kept only in memory), and so are a token receipt's key, QR code and PDF.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from demo.errors import DemoError

SNAPSHOT_PATHS = ("/healthz", "/metrics", "/api/health", "/api/session", "/api/board",
                  "/api/consents/summary")
RECEIPT_SECRETS = ("withdrawal_code", "token", "token_qr_svg", "receipt_pdf")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)[:40]


class KioskAgent:
    """One agent's kiosk session; `api_dir` keeps every response (see the module docstring)."""

    def __init__(self, url: str, api_dir: Path, say: Callable[[str], None],
                 log_hint: Path) -> None:
        self.url = url
        self.api_dir = api_dir
        self.say = say
        self._log_hint = log_hint
        self._api: Any = None

    def login(self, staff_id: str, password: str) -> None:
        """A kiosk session as a gate agent would have (the board and counts need one)."""
        import httpx

        self.api_dir.mkdir(parents=True, exist_ok=True)
        # the demo device's self-signed certificate: this client talks to loopback only
        self._api = httpx.Client(base_url=self.url, verify=False, timeout=5)
        # the kiosk refuses a log-in that does not come from its own origin, as a page's would
        r = self._api.post("/api/session/login", json={"staff_id": staff_id,
                                                       "password": password},
                           headers={"Origin": self.url})
        self._keep("0 login", "/api/session/login", r)
        if r.status_code != 200:
            raise DemoError(f"the demo agent could not log in to the kiosk ({r.status_code}); "
                            f"see {self._log_hint}")
        # what the kiosk page sends with every change: the session's CSRF token and its origin
        self._api.headers.update({"X-CSRF-Token": r.json()["csrf_token"], "Origin": self.url})

    def close(self) -> None:
        # first at teardown: its idle keep-alive TLS connection would otherwise hold the web
        # server's graceful shutdown (the server's close_notify goes unanswered)
        if self._api is not None:
            self._api.close()

    # -- what the agent's page does ------------------------------------------------------------
    def enrol(self, chip: np.ndarray, reference: str) -> str:
        """Show the consent text, check the photo, enrol the traveller who accepted; returns
        the receipt's withdrawal code (kept in memory only)."""
        return str(self.enrol_receipt(chip, reference)["withdrawal_code"])

    def enrol_receipt(self, chip: np.ndarray, reference: str,
                      matching: str | None = None) -> dict:
        """`enrol`, returning the whole receipt (in token mode with the traveller's key: the
        day hands it to the traveller, i.e. holds it in memory only)."""
        import base64

        import cv2

        ok, jpeg = cv2.imencode(".jpg", chip, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise DemoError("the enrolment photo could not be encoded")
        photo_b64 = base64.b64encode(jpeg.tobytes()).decode("ascii")
        del jpeg
        step = f"enrol {reference[-2:]}"  # file names carry no reference
        text = self.call("GET", step, "/api/consent-text")
        check = self.call("POST", step, "/api/enrolments/check",
                          {"source": "upload", "photo": photo_b64})
        if not check.get("ok"):
            raise DemoError(f"the kiosk refused the enrolment photo: "
                            f"{', '.join(check.get('advice', [])) or 'no reason given'}")
        body = {"source": "upload", "photo": photo_b64, "reference": reference,
                "consent_accepted": True, "consent_version": text["version"]}
        if matching is not None:
            body["matching"] = matching
        receipt = self.call("POST", step, "/api/enrolments", body, expect=201,
                            redact=RECEIPT_SECRETS)
        del photo_b64, body
        key = " with their own key (QR code and PDF on the receipt)" if "token" in receipt \
            else ""
        self.say(f"  kiosk: consent text {text['version'][:8]} accepted, photo checked, "
                 f"enrolled{key}; receipt valid until {receipt['expires_at_iso'][11:16]}")
        return receipt

    def withdraw(self, code: str) -> None:
        """The traveller withdraws at the kiosk with the receipt's code."""
        out = self.call("POST", "withdraw", "/api/withdrawals", {"code": code, "by": "traveller"})
        if not out.get("withdrawn"):
            raise DemoError("the kiosk did not withdraw the consent")
        self.say("  kiosk: withdrawn with the receipt's code; template deleted")

    # -- calls and what is kept ----------------------------------------------------------------
    def call(self, method: str, name: str, path: str, body: dict | None = None,
             expect: int = 200, redact: tuple[str, ...] = ()) -> dict:
        """One kiosk API call as the agent; the response is kept for the privacy scan (fields
        in `redact` are replaced in the kept copy only)."""
        import httpx

        try:
            r = self._api.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise DemoError(f"the kiosk did not answer {method} {path}: {exc}") from None
        doc = r.json() if r.headers.get("content-type", "").startswith("application/json") \
            else {}
        kept = dict(doc) if isinstance(doc, dict) else doc
        for key in redact:
            if isinstance(kept, dict) and key in kept:
                kept[key] = "<shown once to the traveller; not kept>"
        self._keep_text(name, path, r.status_code, json.dumps(kept) if redact else r.text)
        if r.status_code != expect:
            detail = doc.get("detail", doc) if isinstance(doc, dict) else doc
            raise DemoError(f"the kiosk answered {method} {path} with {r.status_code}: "
                            f"{str(detail)[:300]}")
        return doc

    def snapshot(self, name: str) -> None:
        """Keep the health, metrics, session, board and consent-count responses now."""
        import httpx

        for path in SNAPSHOT_PATHS:
            try:
                self._keep(name, path, self._api.get(path))
            except httpx.HTTPError as exc:
                (self.api_dir / f"{_slug(name)}{path.replace('/', '_')}.err").write_text(str(exc))

    def _keep(self, name: str, path: str, r: Any) -> None:
        self._keep_text(name, path, r.status_code, r.text)

    def _keep_text(self, name: str, path: str, status: int, text: str) -> None:
        (self.api_dir / f"{_slug(name)}{path.replace('/', '_')}.txt").write_text(
            f"{status}\n{text}")
