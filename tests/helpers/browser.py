"""Helpers shared by the browser tests (not a test module): Debian's chromium via Playwright.

`chromium_page` opens a fresh headless page in `/usr/bin/chromium` (no browser download, a
fresh profile under the test's tmp dir) and fails the test on any JavaScript error; `Shots`
numbers screenshots under a folder; `log_in` signs a staff member in through the page.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium_page(tmp_path: Path, *, ignore_https_errors: bool = False) -> Iterator:
    """A Playwright page in Debian's chromium; asserts no JavaScript error at the end.

    `ignore_https_errors` is for a provisioned device's self-signed kiosk certificate."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    profile = tmp_path / "profile"
    profile.mkdir()
    with sync_playwright() as p:
        # a fresh --user-data-dir per test (Playwright passes it for a persistent context)
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1280, "height": 900}, ignore_https_errors=ignore_https_errors)
        pg = context.pages[0] if context.pages else context.new_page()
        pg.set_default_timeout(15_000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield pg
        finally:
            context.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


class Shots:
    """Numbered full-page screenshots: `shot("login")` -> folder/01-login.png."""

    def __init__(self, page, folder: Path) -> None:
        self.page, self.folder, self.n = page, folder, 0
        folder.mkdir()

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def log_in(page, url: str, name: str, password: str) -> None:
    page.goto(url + "/")
    page.fill("#login-staff", name)
    page.fill("#login-password", password)
    page.keyboard.press("Enter")  # keyboard-operable: Enter submits
    page.wait_for_selector("#who:not([hidden])")
