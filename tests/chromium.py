"""Real headless Chromium for the page's tests: Debian's `chromium`, driven by Playwright.

Playwright only drives the browser installed at CHROMIUM (it never downloads one). Without it the
browser tests are skipped with the reason, except in CI (`CI` set), where they fail instead: a
missing browser must not pass as green. Screenshots go to test-artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import REPO, Server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Flags that work in a container as root; Playwright adds a fresh --user-data-dir of its own per launch.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "test-artifacts" / "browser"
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> None:
    """Skip (locally) or fail (in CI) when there is no real Chromium to drive."""
    missing = None
    if not Path(CHROMIUM).is_file():
        missing = f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright for Python is not installed (pip install -e '.[test]')"
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"The browser tests must run in CI, but there is {missing}.", pytrace=False)
    pytest.skip(f"browser tests need real headless Chromium: {missing}")


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """One browser for a test module; each test opens its own context (its own cookies)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def fresh_screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


def screenshot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def session_cookie(server: Server, token: str) -> dict[str, str]:
    """Sign in through POST /api/auth/login as the page does, and return the cookie it sets, as a
    Playwright cookie for the server's origin."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/api/auth/login", body=json.dumps({"token": token}),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        cookie = response.getheader("Set-Cookie")
    finally:
        connection.close()
    name, _, rest = cookie.partition("=")
    return {"name": name, "value": rest.split(";")[0], "url": f"http://127.0.0.1:{server.port}"}
