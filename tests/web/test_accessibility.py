"""Accessibility of the review UI in real Chromium: every control has an accessible name (as the
browser computes it for screen readers), the keyboard focus is always visible, and no state or flag
is told by colour alone (each carries a word or a sign with a word)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.sim.model import SimIdentification
from bot.store.db import Store
from tests.web.browser_helpers import CHROMIUM, CHROMIUM_ARGS, need_chromium, serving, sign_in_browser
from tests.web.review_ui_helpers import build_app, make_config, seed_proposals

pytestmark = pytest.mark.browser
# The roles a person operates; each needs a name a screen reader can say.
CONTROLS = {"button", "link", "textbox", "searchbox", "combobox", "spinbutton", "checkbox", "radio", "listbox",
            "option", "DisclosureTriangle", "menuitem", "tab", "slider", "switch"}
FOCUS_STYLE = """() => {
  const el = document.activeElement;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
  return {what: el.outerHTML.slice(0, 90), visible: outline || s.boxShadow !== 'none',
          body: el === document.body};
}"""


def _unnamed_controls(page: Any) -> list[str]:
    """Controls in the browser's accessibility tree without a name."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    found = []
    for node in nodes:
        role = (node.get("role") or {}).get("value")
        name = ((node.get("name") or {}).get("value") or "").strip()
        if not node.get("ignored") and role in CONTROLS and not name:
            found.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return found


def _named_everywhere(page: Any, where: str) -> None:
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    assert _unnamed_controls(page) == [], where


def _focus_is_always_visible(page: Any, presses: int) -> int:
    """Tabs through the page; each focused element shows an outline or a ring.  Returns how many."""
    seen = 0
    for _ in range(presses):
        page.keyboard.press("Tab")
        style = page.evaluate(FOCUS_STYLE)
        if style["body"]:
            continue
        assert style["visible"], f"focus not visible on {style['what']}"
        seen += 1
    return seen


def test_controls_are_named_focus_is_visible_and_colour_is_never_alone(sim: Any, store: Store,
                                                                       tmp_path: Path) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "genus", "species"))
    first, second, third = seeded.decision_ids
    obs = sim.world.observations[seeded.observation_ids[0]]
    someone = next(u for u in sim.world.users if u not in (obs.user_id, 1, 2))
    obs.identifications.append(SimIdentification(id=sim.world.next_id("identification"), user_id=someone,
                                                 taxon_id=obs.taxon_id, current=False,
                                                 created_at="2026-03-02T09:00:00+00:00"))
    cfg = make_config(sim, tmp_path)
    cfg.review.map_tiles_url = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # offline: the map without tiles
    with serving(build_app(cfg, store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{base}/signin")
            _named_everywhere(page, "sign-in page")
            sign_in_browser(page, base, sim)
            expect(page.locator(f"[data-testid=map-{first}] .leaflet-control-zoom-in")).to_be_visible()

            # the keyboard focus: visible on every stop of the queue page, and on the card after a key
            page.locator(".skip-link").focus()  # from the top of the page
            assert page.evaluate(FOCUS_STYLE)["visible"], "the skip link shows no focus"
            assert _focus_is_always_visible(page, 60) >= 50
            page.get_by_test_id(f"proposal-{first}").focus()
            page.keyboard.press("j")  # the next card takes the focus: its ring shows
            expect(page.get_by_test_id(f"proposal-{second}")).to_be_focused()
            assert page.evaluate(FOCUS_STYLE)["visible"], "the current card shows no focus"
            page.get_by_test_id(f"proposal-{first}").focus()

            # colour is never the only signal
            card = page.get_by_test_id(f"proposal-{first}")
            chosen = card.locator("button.pick[aria-pressed=true]")
            expect(chosen).to_have_count(1)  # the chosen taxon: a state screen readers say, and a sign
            assert "✔" in chosen.evaluate("(b) => getComputedStyle(b, '::before').content")
            withdrawn = page.get_by_test_id(f"activity-{first}").locator("li.withdrawn")
            expect(withdrawn.first).to_contain_text("withdrawn")  # struck through and said in words
            for flag in card.locator("li.flag").all():
                expect(flag).to_contain_text("⚠")
                expect(flag).to_contain_text("Check:")
            expect(card.locator(".kind")).to_have_text("species ID")
            page.keyboard.press("2")  # choosing another taxon moves the sign and the state with it
            expect(card.locator("button.pick[data-key='2']")).to_have_attribute("aria-pressed", "true")
            expect(card.locator("button.pick[data-key='1']")).to_have_attribute("aria-pressed", "false")
            assert "✔" in card.locator("button.pick[data-key='2']").evaluate(
                "(b) => getComputedStyle(b, '::before').content")
            page.get_by_test_id(f"skip-{second}").click()
            page.get_by_test_id(f"reject-{third}").click()
            for did, words in ((second, "skipped"), (third, "rejected")):  # a state: a word and a sign
                status = page.get_by_test_id(f"status-{did}")
                expect(status).to_contain_text(words)
                assert "✔" in status.evaluate("(s) => getComputedStyle(s, '::before').content")

            page.keyboard.press("?")  # the dialogs are named too
            expect(page.get_by_test_id("keys")).to_be_visible()
            assert _unnamed_controls(page) == [], "keys dialog"
            page.keyboard.press("Escape")
            page.get_by_test_id(f"proposal-{first}").locator("button.photo").first.click()
            expect(page.get_by_test_id("lightbox")).to_be_visible()
            assert _unnamed_controls(page) == [], "photo viewer"
            page.keyboard.press("Escape")

            for path in ("/", f"/proposals/{first}", "/history", "/withdrawals", "/?status=skipped"):
                page.goto(f"{base}{path}")
                _named_everywhere(page, path)
        finally:
            browser.close()
