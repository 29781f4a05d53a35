"""report.html in a real browser (Debian's chromium through Playwright), opened from disk, offline."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Config
from bot.report.build import build_report
from bot.report.outcomes import refresh_outcomes
from bot.store.db import Store
from tests.audit_helpers import CASES, T0, FakePlatform, seed

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing on CI")
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path):  # type: ignore[no-untyped-def]
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return context, page, requests


def test_report_opens_offline_with_tables_and_plots(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "db.sqlite3")
    seed(store)
    refresh_outcomes(store, FakePlatform(CASES), Config(), now=T0 + timedelta(days=1))  # type: ignore[arg-type]
    build_report(store, tmp_path / "report")
    store.close()
    context, page, requests = _open(browser, tmp_path / "report" / "report.html")
    try:
        assert page.title() == "PlantBot audit report"
        assert page.locator("#table-posted tr").count() == 11  # header + 10 posted suggestions
        assert page.locator("#table-would-post tr").count() == 3
        assert page.locator("#precision-rank").is_visible()
        assert page.locator("#queue-table").inner_text().split()[-5:] == ["9", "1", "1", "0", "1"]
        for plot in ("calibration", "abstention", "outcomes"):
            box = page.locator(f"#plot-{plot} svg").bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100, plot
        assert "60.0%" in page.locator(".cards").inner_text()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    finally:
        context.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert all(u.startswith("file:") for u in requests), requests


def test_empty_report_in_the_browser(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "empty.sqlite3")
    build_report(store, tmp_path / "report")
    store.close()
    context, page, _ = _open(browser, tmp_path / "report" / "report.html")
    try:
        assert "Nothing yet" in page.locator("#empty").inner_text()
        assert page.locator("table").count() == 0
        page.screenshot(path=str(tmp_path / "empty.png"))
    finally:
        context.close()
