"""The review UI in English and Spanish: every string extracted from the code and templates has a
Spanish translation, the compiled catalog matches it, and the language follows the browser or
`[posting] language`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from bot.store.db import Store
from tests.web.browser_helpers import CHROMIUM, CHROMIUM_ARGS, need_chromium, serving, sign_in_browser
from tests.web.review_ui_helpers import build_app, make_config, seed_proposals, sign_in

WEB = Path(__file__).resolve().parents[2] / "bot" / "web"
PO = WEB / "translations" / "es" / "LC_MESSAGES" / "messages.po"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def _extracted() -> set[Any]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(WEB), METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_every_string_has_a_spanish_translation_and_the_compiled_catalog_matches() -> None:
    with PO.open("rb") as fh:
        po = read_po(fh)
    with PO.with_suffix(".mo").open("rb") as fh:
        mo = read_mo(fh)
    translated = {_key(m.id): m.string for m in po if m.id}
    missing = [m for m in _extracted() if m not in translated]
    assert missing == [], f"untranslated (run the extraction in babel.cfg): {missing[:5]}"
    assert all(s if isinstance(s, str) else all(s) for s in translated.values())
    assert not any(m.fuzzy for m in po if m.id)
    def table(catalog: Any) -> dict[Any, Any]:
        return {_key(m.id): _key(m.string) for m in catalog if m.id}

    assert table(mo) == table(po)


def _key(value: Any) -> Any:
    return value if isinstance(value, str) else tuple(value)


def test_the_browser_language_wins_else_the_posting_language(sim: Any, store: Store, tmp_path: Path,
                                                             flavor: str) -> None:
    seed_proposals(store, sim.world, sim, kinds=("species",))
    cfg = make_config(sim, tmp_path, flavor=flavor)
    cfg.posting.language = "es"
    client = build_app(cfg, store).test_client()
    sign_in(client)
    spanish = client.get("/", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)  # no German: es
    assert '<html lang="es">' in spanish and "Propuestas por revisar" in spanish and "Aprobar y publicar" in spanish
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Proposals to review" in english
    history = client.get("/history", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Acciones de revisión recientes" in history


@pytest.mark.browser
def test_a_spanish_browser_reviews_in_spanish(sim: Any, store: Store, tmp_path: Path, flavor: str) -> None:
    need_chromium()
    from playwright.sync_api import expect, sync_playwright

    [did] = seed_proposals(store, sim.world, sim, kinds=("species",)).decision_ids
    with serving(build_app(make_config(sim, tmp_path, flavor=flavor), store)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="es-ES").new_page()
            page.set_default_timeout(20_000)
            sign_in_browser(page, base, sim)
            expect(page.locator("h1")).to_contain_text("Propuestas por revisar")
            expect(page.locator(".leaflet-control-zoom-in").first).to_have_attribute("title", "Acercar el mapa")
            page.keyboard.press("?")
            expect(page.get_by_test_id("keys")).to_contain_text("aprobar (y publicar)")
            page.keyboard.press("Escape")
            page.keyboard.press("a")
            expect(page.get_by_test_id(f"status-{did}")).to_contain_text(
                f"Propuesta {did} aprobada: la identificación está publicada.")
            expect(page.get_by_test_id(f"posted-link-{did}")).to_have_text("verlo en la plataforma")

            page.get_by_role("link", name="Retirar").click()  # the Withdraw page, in Spanish
            expect(page.locator("h1")).to_have_text("Sus identificaciones publicadas")
            withdraw = page.locator("[data-testid^=withdraw-]")
            expect(withdraw).to_have_text("Retirar")
            expect(withdraw).to_have_accessible_name(re.compile(r"^Retirar la identificación \d+ de la observación"))
            withdraw.click()
            expect(page.locator(".flash.ok")).to_contain_text("retirada")
            expect(page.get_by_test_id("own-identifications")).to_contain_text(
                "No tiene ninguna identificación publicada que siga vigente.")

            page.goto(f"{base}/auth/callback?error=access_denied")  # a sign-in error, in Spanish
            expect(page.get_by_role("alert")).to_have_text("El inicio de sesión no se completó (access_denied).")
            page.goto(f"{base}/auth/callback?state=forged&code=x")
            expect(page.get_by_role("alert")).to_contain_text("Vuelva a iniciar sesión")
        finally:
            browser.close()
