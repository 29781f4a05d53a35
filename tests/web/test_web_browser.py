"""The review UI in a real browser: Debian's chromium driven by Playwright against the simulator.

Signs in through the simulator's OAuth form, approves one proposal, edits the text of another and
approves it, rejects a third, then checks what the simulator received and what the database recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.store.db import Store
from bot.store.models import DecisionRow, PostRow, ReviewActionRow
from tests.web import browser_helpers
from tests.web.browser_helpers import CHROMIUM, CHROMIUM_ARGS, need_chromium, serving, sign_in_browser
from tests.web.review_ui_helpers import MODERATOR, build_app, endpoint, make_config, seed_proposals, token_login

EDITED = "I checked the photos: the leaves fit this genus.\nA model suggested it; I reviewed it myself."

pytestmark = pytest.mark.browser


@pytest.fixture
def served(sim: Any, store: Store, tmp_path: Path, flavor: str) -> Iterator[str]:
    with serving(build_app(make_config(sim, tmp_path, flavor=flavor), store)) as base:
        yield base


def test_moderator_reviews_proposals_in_chromium(served: str, sim: Any, store: Store,
                                                 tmp_path: Path, flavor: str) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    base = served
    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "genus", "species"))
    approve_id, edit_id, reject_id = seeded.decision_ids
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1600})
            page.set_default_timeout(20_000)
            sign_in_browser(page, base, sim)  # a signed-out visit lands on the sign-in page first
            expect(page.get_by_test_id("moderator")).to_have_text(MODERATOR)
            for did in (approve_id, edit_id, reject_id):
                expect(page.get_by_test_id(f"proposal-{did}")).to_be_visible()
            photos = page.locator(f"[data-testid=proposal-{approve_id}] .photos img")
            assert photos.count() == len(sim.world.observations[seeded.observation_ids[0]].photo_ids)
            page.wait_for_load_state("load")
            widths = photos.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert all(w > 0 for w in widths), f"photos did not load from the simulator: {widths}"
            page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)

            page.get_by_test_id(f"approve-{approve_id}").click()
            expect(page.get_by_test_id(f"status-{approve_id}")).to_contain_text(
                f"Proposal {approve_id} approved: the identification is posted")
            link = page.get_by_test_id(f"posted-link-{approve_id}")
            expect(link).to_have_attribute("href", re.compile(rf"^{re.escape(sim.url)}/identifications/\d+$"))

            page.get_by_test_id(f"edit-open-{edit_id}").click()
            page.get_by_test_id(f"edit-text-{edit_id}").fill(EDITED)
            expect(page.get_by_test_id(f"text-{edit_id}")).to_have_text(EDITED)  # the card shows what is posted
            page.get_by_test_id(f"edit-approve-{edit_id}").click()
            expect(page.get_by_test_id(f"status-{edit_id}")).to_contain_text(
                f"Proposal {edit_id} approved: the comment is posted")

            page.get_by_test_id(f"reason-{reject_id}").fill("the photos show a grass")
            page.get_by_test_id(f"reject-{reject_id}").click()
            expect(page.get_by_test_id(f"status-{reject_id}")).to_contain_text(f"Proposal {reject_id} rejected")
            expect(page.get_by_test_id("empty")).to_be_visible()

            page.goto(f"{base}/history")
            expect(page.get_by_test_id("history")).to_contain_text("the photos show a grass")
            page.screenshot(path=str(tmp_path / "history.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "queue.png").stat().st_size > 0

    writes = sim.writes
    assert len(writes) == 2
    bearers = {w.headers.get("authorization", "").removeprefix("Bearer ") for w in writes}
    assert len(bearers) == 1 and token_login(sim, bearers.pop()) == MODERATOR
    ident, comment = writes
    assert endpoint(ident.path) == "identifications" and endpoint(comment.path) == "comments"
    assert int(ident.json["identification"]["observation_id"]) == seeded.observation_ids[0]
    assert ident.json["identification"].get("vision") in (None, False)
    assert comment.json["comment"]["body"] == EDITED

    with store.session() as s:
        acts = [(a.decision_id, a.action, a.moderator, a.reason, a.edited_text)
                for a in s.scalars(select(ReviewActionRow).order_by(ReviewActionRow.id))]
        status = {d.id: d.status for d in s.scalars(select(DecisionRow))}
        posts = {p.decision_id: (p.status, p.user_login, p.mode) for p in s.scalars(select(PostRow))}
    assert acts == [(approve_id, "approve", MODERATOR, None, None),
                    (edit_id, "edit", MODERATOR, None, EDITED),
                    (reject_id, "reject", MODERATOR, "the photos show a grass", None)]
    assert (status[approve_id], status[edit_id], status[reject_id]) == ("posted", "posted", "rejected")
    assert posts == {approve_id: ("posted", MODERATOR, "review"), edit_id: ("posted", MODERATOR, "review")}


def test_a_missing_chromium_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browser_helpers, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI: .*not installed"):
        need_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        need_chromium()
