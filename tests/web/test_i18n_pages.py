"""Every page, flash message, error page and JSON answer of the review UI reads in Spanish for a
Spanish browser: no English word of the UI's own vocabulary is left, whether or not the string was
ever marked for translation (a string someone forgot to wrap in `_()` fails here, not only in the
catalog check)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.store.db import Store
from bot.store.models import PostRow
from bot.store.withdrawals import mark_retracted
from tests.web.review_ui_helpers import OUTSIDER, build_app, csrf_of, make_config, seed_proposals, sign_in

PO = Path(__file__).resolve().parents[2] / "bot" / "web" / "translations" / "es" / "LC_MESSAGES" / "messages.po"
# English words no Spanish sentence, Latin name or Spanish place uses.
ENGLISH = {"the", "and", "is", "are", "was", "were", "you", "your", "not", "with", "this", "that", "has", "have",
           "only", "of", "to", "on", "by", "it", "its", "be", "or", "for", "from", "there", "again", "please"}
SKIPPED_TAGS = {"code", "kbd", "script", "style"}
READ_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
FETCH = {"X-Requested-With": "fetch"}


class _Words(HTMLParser):
    """What a person reads or hears: text outside code/kbd/script, labels, titles, placeholders, and the
    words the page hands to its script (data-i18n)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_TAGS:
            self._skipping += 1
        for name, value in attrs:
            if value and name in READ_ATTRIBUTES:
                self.parts.append(value)
            elif value and name == "data-i18n":
                self.parts.extend(json.loads(value).values())

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_TAGS and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-zÀ-ÿ]{2,}", re.sub(r"%\(\w+\)[sd]", " ", text))}


def _english_vocabulary() -> set[str]:
    """The UI's English words that its Spanish never uses, plus common English words."""
    with PO.open("rb") as fh:
        catalog = [m for m in read_po(fh) if m.id]
    english = set().union(*(_words(" ".join(m.id) if isinstance(m.id, tuple) else m.id) for m in catalog))
    spanish = set().union(*(_words(" ".join(m.string) if isinstance(m.string, tuple) else m.string)
                            for m in catalog))
    return (english - spanish) | ENGLISH


def _data_vocabulary(sim: Any) -> set[str]:
    """Words that come from the data, not from the UI (names, logins, places, the model)."""
    world = sim.world
    text = " ".join([*(t.name for t in world.taxa.values()), *(u.login for u in world.users.values()),
                     *(o.place_guess or "" for o in world.observations.values()), "testnet", sim.url])
    return _words(text)


def _english_in(text: str, english: set[str]) -> list[str]:
    found = _words(text) & english
    hits = [(w, re.search(rf".{{0,40}}\b{w}\b.{{0,40}}", text, re.I | re.S)) for w in sorted(found)]
    return [f"{w}: {m.group(0)}" for w, m in hits if m]


def _page_words(html: str) -> str:
    parser = _Words()
    parser.feed(html)
    return " | ".join(p.strip() for p in parser.parts if p.strip())


def _spanish_client(app: Any) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es-ES,es;q=0.9"
    return client


def test_every_page_message_and_error_is_in_spanish(sim: Any, store: Store, tmp_path: Path) -> None:
    for obs in sim.world.observations.values():  # the observers' own words, in Spanish
        obs.description = "Junto al camino, en flor."
        for c in obs.comments:
            c.body = "¿Seguro que es esta especie?"
    cfg = make_config(sim, tmp_path)
    cfg.posting.language = "es"  # the text to be posted, too
    app = build_app(cfg, store)
    approve, skip, reject, _open = seed_proposals(store, sim.world, sim,
                                                  kinds=("species", "species", "genus", "family")).decision_ids
    client = _spanish_client(app)
    seen: dict[str, str] = {}

    signed_out = _spanish_client(app)
    seen["sign-in page"] = _page_words(signed_out.get("/signin").get_data(as_text=True))
    seen["sign-in refused"] = _page_words(signed_out.get("/auth/callback?error=access_denied").get_data(as_text=True))
    seen["stale sign-in"] = _page_words(signed_out.get("/auth/callback?state=x&code=y").get_data(as_text=True))
    seen["post while signed out"] = _page_words(signed_out.post(f"/proposals/{approve}/approve").get_data(as_text=True))
    outsider = _spanish_client(app)
    seen["not a moderator"] = _page_words(sign_in(outsider, login=OUTSIDER).get_data(as_text=True))

    sign_in(client)
    token = csrf_of(client)
    for name, path, form in (("approve", f"/proposals/{approve}/approve", {}),
                             ("approve again", f"/proposals/{approve}/approve", {}),
                             ("skip", f"/proposals/{skip}/skip", {}),
                             ("reject", f"/proposals/{reject}/reject", {}),
                             ("unknown taxon", f"/proposals/{_open}/preview", {"taxon_id": "987654321"}),
                             ("empty text", f"/proposals/{_open}/edit", {"text": " "})):
        answer = client.post(path, data={"csrf_token": token, **form}, headers=FETCH).get_json()
        seen[f"JSON: {name}"] = answer["message"]
    with store.session() as s:
        mark_retracted(s, "v1")
        post_id = s.scalars(select(PostRow.id).where(PostRow.status == "posted")).one()
    for name, path in (("queue", "/"), ("skipped", "/?status=skipped"), ("permalink", f"/proposals/{approve}"),
                       ("history", "/history"), ("withdrawals", "/withdrawals"),
                       ("no such proposal", "/proposals/999999"), ("no such page", "/nowhere")):
        seen[name] = _page_words(client.get(path).get_data(as_text=True))
    for name in ("withdrawn", "already withdrawn"):
        done = client.post(f"/withdrawals/{post_id}", data={"csrf_token": token}, follow_redirects=True)
        seen[name] = _page_words(done.get_data(as_text=True))
    seen["forged form"] = _page_words(client.post(f"/withdrawals/{post_id}", data={"csrf_token": "forged"})
                                      .get_data(as_text=True))

    english = _english_vocabulary() - _data_vocabulary(sim)
    leftovers = {name: hits for name, text in seen.items() if (hits := _english_in(text, english))}
    assert leftovers == {}
    assert "Sus identificaciones publicadas" in seen["withdrawals"]
    assert "retirada" in seen["withdrawn"] and "ya estaba retirada" in seen["already withdrawn"]
    assert "El inicio de sesión no se completó" in seen["sign-in refused"]
    assert "ha caducado" in seen["stale sign-in"]
    assert "No se hizo: la propuesta" in seen["JSON: approve again"]
    assert "No existe la propuesta 999999" in seen["no such proposal"]
