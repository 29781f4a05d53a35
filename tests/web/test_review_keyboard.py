"""Review at keyboard speed, in real Chromium against the simulator: one key per clear decision, the
next card focused at once, actions posted in the background with the result on the card, a number
key picks a top-5 species and the preview shows the exact text that is then posted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.store.db import Store
from bot.store.models import DecisionRow, PredictionRow, ReviewActionRow
from tests.web.browser_helpers import CHROMIUM, CHROMIUM_ARGS, need_chromium, serving, sign_in_browser
from tests.web.review_ui_helpers import IDENT_PATH, MODERATOR, build_app, form_fields, make_config, seed_proposals

pytestmark = pytest.mark.browser


def _current(page: Any) -> Any:
    return page.locator("article.card.current")


def test_one_key_per_decision_and_the_next_card_takes_the_focus(sim: Any, store: Store, tmp_path: Path,
                                                                flavor: str) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "genus", "species", "species", "family"))
    first, second, third, fourth, fifth = seeded.decision_ids
    with store.session() as s:
        third_pick = s.scalars(select(PredictionRow).where(PredictionRow.decision_id == third,
                                                           PredictionRow.rank == "species",
                                                           PredictionRow.position == 2)).one()
        pick_id, pick_name = third_pick.taxon_id, third_pick.name
    with serving(build_app(make_config(sim, tmp_path, flavor=flavor), store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            sign_in_browser(page, base, sim)
            expect(_current(page)).to_have_attribute("data-id", str(first))
            y0 = page.evaluate("window.scrollY")

            page.keyboard.press("a")  # approve: one key
            expect(_current(page)).to_have_attribute("data-id", str(second))  # at once, no page load
            expect(page.get_by_test_id(f"status-{first}")).to_contain_text("is posted")
            expect(page.get_by_test_id(f"posted-link-{first}")).to_be_visible()
            assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

            page.keyboard.press("s")  # skip: one key
            expect(_current(page)).to_have_attribute("data-id", str(third))
            expect(page.get_by_test_id(f"status-{second}")).to_contain_text("skipped")

            page.keyboard.press("3")  # the third species of the top 5
            expect(page.get_by_test_id(f"chosen-{third}")).to_have_text(pick_name)
            expect(page.get_by_test_id(f"text-{third}")).to_contain_text(f"{pick_name}: chosen by {MODERATOR}")
            expect(page.get_by_test_id(f"post-kind-{third}")).to_have_text("an identification")
            shown = page.get_by_test_id(f"text-{third}").inner_text()
            page.keyboard.press("a")
            expect(_current(page)).to_have_attribute("data-id", str(fourth))
            expect(page.get_by_test_id(f"status-{third}")).to_contain_text("identification is posted")

            page.keyboard.press("r")  # reject: the reason box takes the focus
            expect(page.get_by_test_id(f"reason-{fourth}")).to_be_focused()
            page.keyboard.type("leaves do not match")
            page.keyboard.press("Enter")
            expect(page.get_by_test_id(f"status-{fourth}")).to_contain_text("rejected")

            expect(_current(page)).to_have_attribute("data-id", str(fifth))
            page.keyboard.press("e")  # an x typed into a text field is a letter, not a decision
            page.keyboard.type("xyz")
            expect(page.get_by_test_id(f"search-{fifth}")).to_have_value("xyz")
            page.keyboard.press("Escape")
            expect(page.get_by_test_id(f"status-{fifth}")).to_be_hidden()
            page.keyboard.press("x")  # reject without a reason: one key
            expect(page.get_by_test_id(f"status-{fifth}")).to_contain_text("rejected")
            expect(page.get_by_test_id("empty")).to_be_visible()

            page.keyboard.press("k")
            expect(_current(page)).not_to_have_attribute("data-id", str(fifth))
            page.keyboard.press("?")
            expect(page.get_by_test_id("keys")).to_be_visible()
            expect(page.get_by_test_id("keys")).to_contain_text("approve")
            expect(page.get_by_test_id("keys")).to_contain_text("reject at once, without a reason")
            assert "key x" in (page.get_by_test_id(f"reject-{first}").get_attribute("title") or "")
            page.keyboard.press("Escape")
            expect(page.get_by_test_id("keys")).to_be_hidden()
            assert page.evaluate("window.scrollY") >= y0  # focus moved down the list, never back to the top
        finally:
            browser.close()

    writes = list(sim.writes)
    assert [w.path for w in writes] == [IDENT_PATH[flavor]] * 2  # one post per approval
    assert form_fields(writes[1].json["identification"])["taxon_id"] == str(pick_id)
    assert writes[1].json["identification"]["body"] == shown  # what was shown is what was posted
    with store.session() as s:
        status = {d.id: d.status for d in s.scalars(select(DecisionRow))}
        acts = [(a.decision_id, a.action, a.reason, a.edited_taxon_id)
                for a in s.scalars(select(ReviewActionRow).order_by(ReviewActionRow.id))]
    assert status == {first: "posted", second: "skipped", third: "posted", fourth: "rejected", fifth: "rejected"}
    assert acts == [(first, "approve", None, None), (second, "skip", None, None), (third, "edit", None, pick_id),
                    (fourth, "reject", "leaves do not match", None), (fifth, "reject", None, None)]


def test_the_next_page_of_cards_arrives_before_the_page_runs_out(sim: Any, store: Store, tmp_path: Path,
                                                                 flavor: str) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "genus", "species", "family", "species"))
    cfg = make_config(sim, tmp_path, flavor=flavor)
    cfg.review.page_size = 2  # five proposals, two a page: the page fetches the rest itself
    with serving(build_app(cfg, store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            sign_in_browser(page, base, sim)
            for did in seeded.decision_ids:
                expect(_current(page)).to_have_attribute("data-id", str(did))
                page.keyboard.press("s")
                expect(page.get_by_test_id(f"status-{did}")).to_contain_text("skipped")
            expect(page.get_by_test_id("empty")).to_be_visible()
            assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        finally:
            browser.close()
    with store.session() as s:
        assert {d.status for d in s.scalars(select(DecisionRow))} == {"skipped"}
