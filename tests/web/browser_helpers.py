"""Driving the review UI in Debian's chromium with Playwright: serving the app and signing in."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from bot.web.server import make_review_server
from tests.web.review_ui_helpers import MODERATOR, PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def need_chromium() -> None:
    """Skips where chromium is missing on a developer machine; in CI a missing browser is a failure."""
    if os.path.exists(CHROMIUM):
        return
    message = f"{CHROMIUM} is not installed (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI: {message}")
    pytest.skip(message)


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app on a free loopback port, in a thread; yields its base URL."""
    server = make_review_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="review-ui", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sign_in_browser(page: Any, base: str, sim: Any, path: str = "/") -> None:
    """Through the simulator's OAuth form, landing on `path`: a signed-out visit to `path` is sent to the
    sign-in page, which remembers where to return."""
    from playwright.sync_api import expect

    page.goto(f"{base}{path}")
    expect(page).to_have_url(f"{base}/signin?next={path}")
    page.click("#signin")
    page.wait_for_url(f"{sim.url}/oauth/authorize?*")
    page.fill("#login", MODERATOR)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")
