"""Everything needed to judge a proposal on one card, in real Chromium against the simulator: the
observation's date, place, coordinates and map (without tiles: tests are offline), identifications
by others, the flags, the permalink, the taxon search, errors that keep the moderator's work, the
photo lightbox, and a phone-sized screen; against both API flavors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.model import SimIdentification
from bot.store.db import Store
from tests.web.browser_helpers import CHROMIUM, CHROMIUM_ARGS, need_chromium, serving, sign_in_browser
from tests.web.review_ui_helpers import IDENT_PATH, build_app, form_fields, make_config, seed_proposals

pytestmark = pytest.mark.browser
OWN_TEXT = "My own words: the bracts and the leaf margin fit this species."


def _other_family_species(world: Any, taxon_id: int) -> int:
    """A species whose family differs from `taxon_id`'s (a contradicting observer's taxon)."""
    family = world.ancestor_ids(taxon_id)[-3]
    return next(t.id for t in sorted(world.taxa.values(), key=lambda t: t.id)
                if t.rank == "species" and t.iconic_taxon_name == "Plantae" and family not in world.ancestor_ids(t.id))


def test_the_card_shows_context_flags_and_keeps_the_moderators_work(sim: Any, store: Store, tmp_path: Path,
                                                                    flavor: str) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "species"))
    did, oid = seeded.decision_ids[0], seeded.observation_ids[0]
    obs = sim.world.observations[oid]
    with store.session() as s:
        from bot.store.models import DecisionRow
        proposed = s.get(DecisionRow, did).taxon_id  # type: ignore[union-attr]
    other = _other_family_species(sim.world, proposed)
    obs.taxon_id = other  # the observer says a species of another family
    someone = next(u for u in sim.world.users if u not in (obs.user_id, 1, 2))
    obs.identifications.append(SimIdentification(id=sim.world.next_id("identification"), user_id=someone,
                                                 taxon_id=other, created_at="2026-03-02T09:00:00+00:00"))
    obs.comments.clear()
    search_for = next(t for t in sorted(sim.world.taxa.values(), key=lambda t: t.id)
                      if t.rank == "species" and t.id not in (proposed, other))
    cfg = make_config(sim, tmp_path, flavor=flavor)
    cfg.review.map_tiles_url = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # nothing listens there: no tiles
    with serving(build_app(cfg, store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            sign_in_browser(page, base, sim, path=f"/proposals/{did}")  # the permalink
            card = page.get_by_test_id(f"proposal-{did}")
            expect(card).to_be_visible()
            expect(page.get_by_test_id(f"place-{did}")).to_have_text(obs.place_guess)
            expect(page.get_by_test_id(f"coords-{did}")).to_contain_text(f"{obs.latitude:.5f}, {obs.longitude:.5f}")
            expect(page.get_by_test_id(f"coords-{did}")).to_contain_text(f"± {obs.positional_accuracy} m")
            expect(page.get_by_test_id(f"observed-{did}")).to_contain_text(obs.observed_at[:10])
            expect(page.locator(f"[data-testid=map-{did}] path.leaflet-interactive").first).to_be_visible()
            flags = page.get_by_test_id(f"flags-{did}")
            expect(flags.locator("[data-flag=observer]")).to_contain_text(sim.world.taxa[other].name)
            expect(flags.locator("[data-flag=changed]")).to_contain_text("1 new identification")
            activity = page.get_by_test_id(f"activity-{did}")
            expect(activity).to_contain_text(sim.world.users[someone].login)
            expect(activity).to_contain_text("new since the proposal")

            page.keyboard.press("z")  # the lightbox, at the large size
            expect(page.get_by_test_id("lightbox")).to_be_visible()
            expect(page.get_by_test_id("lightbox-img")).to_have_attribute(
                "src", re.compile(rf"^{re.escape(sim.url)}/photos/{obs.photo_ids[0]}/large\.jpe?g"))
            page.keyboard.press("ArrowRight")
            expect(page.get_by_test_id("lightbox-count")).to_have_text(f"photo 2 of {len(obs.photo_ids)}")
            page.keyboard.press("z")
            expect(page.get_by_test_id("lightbox")).to_have_class("lightbox zoomed")
            page.keyboard.press("Escape")
            expect(page.get_by_test_id("lightbox")).to_be_hidden()

            page.keyboard.press("e")  # search a taxon by name; ids are never typed
            expect(page.get_by_test_id(f"search-{did}")).to_be_focused()
            page.keyboard.type(search_for.name[:-2])
            expect(page.get_by_test_id(f"results-{did}").locator("button.result").first).to_contain_text(search_for.name)
            page.keyboard.press("Enter")
            expect(page.get_by_test_id(f"chosen-{did}")).to_have_text(search_for.name)
            expect(page.get_by_test_id(f"text-{did}")).to_contain_text(f"{search_for.name}: chosen by")
            page.get_by_test_id(f"edit-text-{did}").fill(OWN_TEXT)
            expect(page.get_by_test_id(f"text-{did}")).to_have_text(OWN_TEXT)

            sim.faults = FaultPlan([FaultRule(f"POST {IDENT_PATH[flavor]}", "status", status=503, times=1)])
            page.get_by_test_id(f"edit-approve-{did}").click()  # the platform refuses once
            expect(page.get_by_test_id(f"status-{did}")).to_contain_text("did not take it")
            expect(page.get_by_test_id(f"edit-text-{did}")).to_have_value(OWN_TEXT)  # the work is kept
            expect(page.get_by_test_id(f"chosen-{did}")).to_have_text(search_for.name)
            page.get_by_test_id(f"edit-approve-{did}").click()
            expect(page.get_by_test_id(f"status-{did}")).to_contain_text("identification is posted")
        finally:
            browser.close()
    posted = [w for w in sim.writes if w.path == IDENT_PATH[flavor] and w.status == 200]
    assert len(posted) == 1
    assert form_fields(posted[0].json["identification"]) == {"observation_id": str(oid), "taxon_id": str(search_for.id),
                                                             "body": OWN_TEXT}


def test_an_unknown_taxon_keeps_the_text_and_a_phone_needs_no_sideways_scroll(sim: Any, store: Store,
                                                                              tmp_path: Path, flavor: str) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "genus"))
    did = seeded.decision_ids[0]
    with serving(build_app(make_config(sim, tmp_path, flavor=flavor), store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.set_default_timeout(20_000)
            sign_in_browser(page, base, sim)
            expect(page.get_by_test_id(f"proposal-{did}")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll(
                'main button, main input:not([type=hidden]), main select, main textarea, header button'))
              .filter((el) => !(el.getAttribute('aria-label') || (el.labels && el.labels.length) ||
                                el.textContent.trim()))
              .map((el) => el.outerHTML.slice(0, 80))""")
            assert unlabelled == []  # every control has a label
            approve = page.get_by_test_id(f"approve-{did}")
            box = approve.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            assert box["y"] + box["height"] <= 844 and box["height"] >= 44  # on screen, thumb-sized
            page.get_by_test_id(f"edit-open-{did}").click()
            page.get_by_test_id(f"edit-text-{did}").fill(OWN_TEXT)
            page.evaluate(f"document.querySelector('[data-testid=taxon-{did}]').value = '987654321'")
            page.get_by_test_id(f"edit-approve-{did}").click()
            expect(page.get_by_test_id(f"edit-error-{did}")).to_contain_text("Taxon 987654321 does not exist")
            expect(page.get_by_test_id(f"edit-text-{did}")).to_have_value(OWN_TEXT)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        finally:
            browser.close()
    assert list(sim.writes) == []
