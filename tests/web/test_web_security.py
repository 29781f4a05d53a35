"""The review UI against hostile input: redirects after sign-in, refused photo URLs, look-alike logins,
renamed accounts, absurd page numbers, and what the browser's cookie may reveal."""

from __future__ import annotations

import base64
import json
import logging
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.sim.model import SimUser
from bot.sim.world import MODERATOR_USER_ID
from bot.store.db import Store
from bot.store.models import PhotoRow
from bot.web import tile_source
from bot.web.context import EXTENSION
from bot.web.security import safe_next
from tests.web.review_ui_helpers import MODERATOR, build_app, make_config, seed_proposals, sign_in


@pytest.fixture
def app(sim: Any, store: Store, tmp_path: Path, flavor: str) -> Flask:
    return build_app(make_config(sim, tmp_path, flavor=flavor), store)


@pytest.fixture
def seeded(sim: Any, store: Store) -> Any:
    return seed_proposals(store, sim.world, sim)


@pytest.mark.parametrize("target", [
    "/\t/evil.example/x", "/\n/evil.example/x", "/\r/evil.example", "//evil.example", "/\\evil.example",
    "\\/evil.example", "https://evil.example/", "javascript:alert(1)", "/x\x00y", " /x", "http:/evil", "",
    "/\u2028/evil",
])
def test_safe_next_refuses_anything_but_a_same_origin_path(target: str) -> None:
    assert safe_next(target, "/queue") == "/queue"


@pytest.mark.parametrize("target", ["/", "/history", "/?kind=genus&page=2", "/proposals/1"])
def test_safe_next_keeps_same_origin_paths(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize("raw", ["/%09/evil.example/x", "/%0a/evil.example/x", "/%0d%0aSet-Cookie:x=1"])
def test_sign_in_never_redirects_off_site(app: Flask, seeded: Any, raw: str) -> None:
    c = app.test_client()
    assert c.get(f"/signin?next={raw}").status_code == 200
    start = c.get(f"/login?next={raw}")
    assert start.status_code == 302
    c.get("/logout")
    done = _finish(c, start)
    assert done.status_code == 302 and done.headers["Location"] == "/"


def _finish(c: FlaskClient, start: Any) -> Any:
    """The rest of the sign-in flow once /login has answered."""
    from urllib.parse import parse_qs, urlsplit

    import requests

    authorize = start.headers["Location"]
    fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    answer = requests.post(authorize.split("?", 1)[0], data={**fields, "login": MODERATOR, "password": "password"},
                           allow_redirects=False, timeout=10)
    back = urlsplit(answer.headers["Location"])
    return c.get(f"{back.path}?{back.query}")


def _cookie_payload(c: FlaskClient) -> str:
    cookie = c.get_cookie("plantbot_session")
    assert cookie is not None
    data = cookie.value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    if cookie.value.startswith("."):
        raw = zlib.decompress(raw)
    return raw.decode("utf-8")


def test_the_pkce_verifier_never_reaches_the_browser(app: Flask, seeded: Any) -> None:
    c = app.test_client()
    start = c.get("/login")
    payload = json.loads(_cookie_payload(c))
    assert "verifier" not in json.dumps(payload)
    assert len(json.dumps(payload)) < 200  # the state handle only
    assert _finish(c, start).headers["Location"] == "/"  # and sign-in still works


def test_a_look_alike_login_is_not_a_moderator(sim: Any, store: Store, tmp_path: Path, flavor: str) -> None:
    kelvin = "\u212airk"  # KELVIN SIGN + "irk": case-folds to "kirk"
    sim.world.users[77] = SimUser(77, kelvin)
    app = build_app(make_config(sim, tmp_path, moderators=("kirk",), flavor=flavor), store)
    resp = sign_in(app.test_client(), login=kelvin)
    assert resp.status_code == 403


def test_a_moderator_login_now_held_by_another_account_is_refused(app: Flask, sim: Any, seeded: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    assert sign_in(app.test_client()).headers["Location"] == "/"  # first sign-in records the user id
    with sim.lock:  # the moderator renames their account; someone else takes the old login
        sim.world.users[MODERATOR_USER_ID].login = "moderator-renamed"
        sim.world.users[88] = SimUser(88, MODERATOR)
    with caplog.at_level(logging.WARNING, logger="bot.web"):
        resp = sign_in(app.test_client())
    assert resp.status_code == 403
    assert any("88" in r.getMessage() and MODERATOR in r.getMessage() for r in caplog.records)


def test_only_allowed_photo_hosts_reach_the_page_and_the_csp_names_exactly_them(app: Flask, sim: Any, seeded: Any,
                                                                                store: Store) -> None:
    obs_id = seeded.observation_ids[0]
    with store.session() as s:
        s.add(PhotoRow(observation_id=obs_id, photo_id=990001, position=9, status="refused",
                       url="https://evil.example/photos/990001/square.jpg"))
        s.add(PhotoRow(observation_id=obs_id, photo_id=990002, position=10, status="refused",
                       url="https://static.inaturalist.org:8443/photos/990002/square.jpg"))
    c = app.test_client()
    sign_in(c)
    resp = c.get("/")
    page = resp.get_data(as_text=True)
    assert "evil.example" not in page and ":8443" not in page
    assert f"{sim.url}/photos/" in page  # the good photos are still there
    csp = dict(part.strip().split(" ", 1) for part in resp.headers["Content-Security-Policy"].split(";"))
    img = set(csp["img-src"].split())
    tiles = set(tile_source(app.extensions[EXTENSION].cfg.review.map_tiles_url))  # the map's tile host (issue 13)
    # the platform's own host, this app's map markers and the tile host, nothing wider
    assert img == {sim.url, sim.url.replace("http://", "https://"), "'self'"} | tiles


def test_an_absurd_page_number_is_clamped(app: Flask, seeded: Any) -> None:
    c = app.test_client()
    sign_in(c)
    for page in ("99999999999999999999999", "-3", "1e9", "x"):
        resp = c.get(f"/?page={page}")
        assert resp.status_code == 200, page
        assert "Proposals to review" in resp.get_data(as_text=True)
