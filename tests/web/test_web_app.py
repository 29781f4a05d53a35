"""The review app through Flask's test client, signed in against the simulator's OAuth (PKCE checked there)."""

from __future__ import annotations

import html
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.store.db import Store
from bot.store.models import DecisionRow, PostRow, ReviewActionRow
from bot.store.posting import get_decision
from bot.web.context import EXTENSION
from tests.web.review_ui_helpers import (
    MODERATOR,
    OUTSIDER,
    build_app,
    csrf_of,
    endpoint,
    make_config,
    seed_proposals,
    sign_in,
    token_login,
)


@pytest.fixture
def app(sim: Any, store: Store, tmp_path: Path, flavor: str) -> Flask:
    return build_app(make_config(sim, tmp_path, flavor=flavor), store)


@pytest.fixture
def seeded(sim: Any, store: Store) -> Any:
    return seed_proposals(store, sim.world, sim)


@pytest.fixture
def client(app: Flask, seeded: Any) -> FlaskClient:
    c = app.test_client()
    done = sign_in(c)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    return c


def writes(sim: Any) -> list[Any]:
    return list(sim.writes)


def statuses(store: Store) -> dict[int, str]:
    with store.session() as s:
        return {d.id: d.status for d in s.scalars(select(DecisionRow))}


def actions(store: Store) -> list[tuple[int, str, str, str | None, int | None, str | None]]:
    with store.session() as s:
        return [(a.decision_id, a.action, a.moderator, a.reason, a.edited_taxon_id, a.edited_text)
                for a in s.scalars(select(ReviewActionRow).order_by(ReviewActionRow.id))]


def test_pages_redirect_to_sign_in_without_a_session(app: Flask) -> None:
    c = app.test_client()
    for path in ("/", "/history", "/?kind=genus"):
        resp = c.get(path)
        assert resp.status_code == 302
        assert resp.headers["Location"].startswith("/signin?next=")
    assert "Sign in with" in c.get("/signin").get_data(as_text=True)


def test_sign_in_uses_authorization_code_with_pkce(app: Flask, sim: Any, seeded: Any) -> None:
    c = app.test_client()
    start = c.get("/login")
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert start.headers["Location"].startswith(f"{sim.url}/oauth/authorize?")
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43 and query["client_id"] == ["plantbot-review-test"]
    done = sign_in(c)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    page = c.get("/").get_data(as_text=True)
    assert f"Signed in as <strong data-testid=\"moderator\">{MODERATOR}</strong>" in page
    vault = app.extensions[EXTENSION].vault
    assert len(vault) == 1


def test_a_wrong_pkce_verifier_is_refused_by_the_platform(app: Flask, seeded: Any) -> None:
    c = app.test_client()
    start = c.get("/login")
    assert start.status_code == 302
    with c.session_transaction() as sess:  # tamper with the verifier (kept server-side) between /login and callback
        state = sess["oauth_pending"]
    pending = app.extensions[EXTENSION].pending
    pending.put(state, replace(pending.pop(state), verifier="x" * 64))
    authorize = start.headers["Location"]
    fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    answer = requests.post(authorize.split("?")[0], data={**fields, "login": MODERATOR, "password": "password"},
                     allow_redirects=False, timeout=10)
    back = urlsplit(answer.headers["Location"])
    resp = c.get(f"{back.path}?{back.query}")
    assert resp.status_code == 403
    assert "refused the sign-in" in resp.get_data(as_text=True)
    assert c.get("/").status_code == 302  # still signed out


def test_a_callback_with_a_foreign_state_is_refused(app: Flask) -> None:
    c = app.test_client()
    c.get("/login")
    resp = c.get("/auth/callback?code=abc&state=not-ours")
    assert resp.status_code == 400 and "stale" in resp.get_data(as_text=True)


def test_a_non_moderator_is_refused(app: Flask, seeded: Any) -> None:
    c = app.test_client()
    resp = sign_in(c, login=OUTSIDER)
    assert resp.status_code == 403
    text = resp.get_data(as_text=True)
    assert OUTSIDER in text and "not" in text and "[review] moderators" in text
    assert c.get("/").status_code == 302
    assert len(app.extensions[EXTENSION].vault) == 0


def test_queue_card_shows_everything_a_moderator_needs(client: FlaskClient, sim: Any, seeded: Any,
                                                        store: Store) -> None:
    page = client.get("/").get_data(as_text=True)
    ids = [int(m) for m in re.findall(r'data-testid="proposal-(\d+)"', page)]
    assert ids == seeded.decision_ids  # oldest first
    first_obs = sim.world.observations[seeded.observation_ids[0]]
    for pid in first_obs.photo_ids:
        # the card's context refresh re-reads the observation, so the flavor's own URL shape (legacy: .jpeg?…)
        assert re.search(rf"/photos/{pid}/medium\.jpe?g", page)
    assert f'href="{sim.url}/observations/{seeded.observation_ids[0]}"' in page
    with store.session() as s:
        d = s.get(DecisionRow, seeded.decision_ids[0])
        assert d is not None
        preds = [p.name for p in d.predictions if p.rank == "species"]
        genus = next(p.name for p in d.predictions if p.rank == "genus")
        family = next(p.name for p in d.predictions if p.rank == "family")
    for name in [*preds[:5], genus, family]:
        assert name in page
    assert "90.0%" in page  # the species probability
    assert "Observer&#39;s taxon" in page or "Observer's taxon" in page
    assert "Community taxon" in page
    assert MODERATOR in page and "testnet" in page  # the proposed text names the reviewer and the model


def test_queue_filters_by_kind_and_min_score(client: FlaskClient, seeded: Any) -> None:
    genus_only = client.get("/?kind=genus").get_data(as_text=True)
    assert re.findall(r'data-testid="proposal-(\d+)"', genus_only) == [str(seeded.decision_ids[1])]
    confident = client.get("/?min_prob=85").get_data(as_text=True)
    assert re.findall(r'data-testid="proposal-(\d+)"', confident) == [str(seeded.decision_ids[0])]


def test_posts_without_a_session_are_refused(app: Flask, seeded: Any, store: Store, sim: Any) -> None:
    c = app.test_client()
    for action in ("approve", "reject", "skip", "edit"):
        resp = c.post(f"/proposals/{seeded.decision_ids[0]}/{action}", data={"text": "x"})
        assert resp.status_code == 403
    assert set(statuses(store).values()) == {"proposed"} and actions(store) == [] and writes(sim) == []


def test_posts_without_a_valid_csrf_token_are_rejected(client: FlaskClient, seeded: Any, store: Store,
                                                       sim: Any) -> None:
    did = seeded.decision_ids[0]
    assert client.post(f"/proposals/{did}/approve").status_code == 400
    assert client.post(f"/proposals/{did}/approve", data={"csrf_token": "forged"}).status_code == 400
    assert client.post(f"/proposals/{did}/reject", data={"reason": "x"}).status_code == 400
    assert client.post("/logout").status_code == 400
    assert set(statuses(store).values()) == {"proposed"} and actions(store) == [] and writes(sim) == []


def test_approve_posts_under_the_moderators_token(client: FlaskClient, seeded: Any, store: Store,
                                                  sim: Any) -> None:
    did = seeded.decision_ids[0]
    token = csrf_of(client)
    resp = client.post(f"/proposals/{did}/approve", data={"csrf_token": token, "back": "/"})
    assert resp.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "approved: the identification is posted" in page and f'data-testid="proposal-{did}"' not in page
    [write] = writes(sim)
    bearer = write.headers.get("authorization", "").removeprefix("Bearer ")
    assert token_login(sim, bearer) == MODERATOR  # the moderator's own token, not the bot's
    assert endpoint(write.path) == "identifications"
    with store.session() as s:
        post = s.scalars(select(PostRow)).one()
        assert (post.user_login, post.mode, post.status) == (MODERATOR, "review", "posted")
    assert statuses(store)[did] == "posted"
    assert actions(store) == [(did, "approve", MODERATOR, None, None, None)]
    ident = sim.world.observations[seeded.observation_ids[0]].identifications[-1]
    assert ident.user_id == 2 and ident.vision is False


def test_edit_text_then_approve_posts_the_edited_text(client: FlaskClient, seeded: Any, store: Store,
                                                      sim: Any) -> None:
    did = seeded.decision_ids[1]  # a genus comment
    token = csrf_of(client)
    text = "Looks like this genus to me; the model agreed.\r\nReviewed by a person."
    resp = client.post(f"/proposals/{did}/edit", data={"csrf_token": token, "text": text, "back": "/"})
    assert resp.status_code == 302
    [write] = writes(sim)
    assert endpoint(write.path) == "comments"
    body = write.json["comment"]["body"]
    assert body == text.replace("\r\n", "\n")
    assert actions(store) == [(did, "edit", MODERATOR, None, None, text.replace("\r\n", "\n"))]
    assert statuses(store)[did] == "posted"


def test_edit_taxon_posts_an_identification_of_the_new_taxon(client: FlaskClient, seeded: Any, store: Store,
                                                             sim: Any) -> None:
    did = seeded.decision_ids[0]
    with store.session() as s:
        d = get_decision(s, did)
        assert d is not None
        other = next(t.id for t in sim.world.taxa.values() if t.rank == "species" and t.id != d.taxon_id
                     and t.iconic_taxon_name == "Plantae")
    token = csrf_of(client)
    page = client.get("/").get_data(as_text=True)
    shown = re.search(rf'data-testid="edit-text-{did}">(.*?)</textarea>', page, re.S)
    assert shown is not None
    unchanged = html.unescape(shown.group(1))
    bad = client.post(f"/proposals/{did}/edit", data={"csrf_token": token, "taxon_id": "999999999",
                                                      "text": unchanged})
    assert bad.status_code == 302 and writes(sim) == [] and actions(store) == []
    assert "does not exist" in client.get("/").get_data(as_text=True)
    client.post(f"/proposals/{did}/edit", data={"csrf_token": token, "taxon_id": str(other), "text": unchanged})
    [write] = writes(sim)
    assert int(write.json["identification"]["taxon_id"]) == other
    assert sim.world.taxa[other].name in write.json["identification"]["body"]  # the text follows the edit
    assert actions(store) == [(did, "edit", MODERATOR, None, other, None)]
    history = html.unescape(client.get("/history").get_data(as_text=True))
    assert write.json["identification"]["body"] in history  # the words actually posted
    assert f"{sim.world.taxa[other].name}</strong>" in history  # the final taxon by name, not a bare id
    assert f"chosen by the moderator; the model proposed {d.taxon_name}" in history


def test_reject_and_skip_record_actions_and_post_nothing(client: FlaskClient, seeded: Any, store: Store,
                                                         sim: Any) -> None:
    first, second, third = seeded.decision_ids
    token = csrf_of(client)
    client.post(f"/proposals/{first}/reject", data={"csrf_token": token, "reason": "photos show a fern"})
    client.post(f"/proposals/{second}/skip", data={"csrf_token": token})
    # a second moderator action on a rejected proposal is refused, not posted
    client.post(f"/proposals/{first}/approve", data={"csrf_token": token})
    assert "already rejected" in client.get("/").get_data(as_text=True)
    st = statuses(store)
    assert (st[first], st[second], st[third]) == ("rejected", "skipped", "proposed")
    assert actions(store) == [(first, "reject", MODERATOR, "photos show a fern", None, None),
                              (second, "skip", MODERATOR, None, None, None)]
    assert writes(sim) == []
    queue = client.get("/").get_data(as_text=True)
    assert f'data-testid="proposal-{second}"' not in queue
    assert f'data-testid="proposal-{second}"' in client.get("/?status=skipped").get_data(as_text=True)
    history = client.get("/history").get_data(as_text=True)
    assert "photos show a fern" in history and "skip" in history and MODERATOR in history


def test_dry_run_shows_a_banner_and_approving_posts_nothing(sim: Any, store: Store, tmp_path: Path) -> None:
    app = build_app(make_config(sim, tmp_path, mode="dry-run"), store)
    seeded = seed_proposals(store, sim.world, sim)
    c = app.test_client()
    sign_in(c)
    page = c.get("/").get_data(as_text=True)
    assert 'data-testid="dry-run-banner"' in page
    resp = c.post(f"/proposals/{seeded.decision_ids[0]}/approve", data={"csrf_token": csrf_of(c)},
                  follow_redirects=True)
    assert "nothing was posted (dry run)" in resp.get_data(as_text=True)
    assert writes(sim) == []
    assert actions(store)[0][1] == "approve"
    with store.session() as s:
        assert s.scalars(select(PostRow)).all() == []


def test_sign_out_forgets_the_token(client: FlaskClient, app: Flask, seeded: Any) -> None:
    token = csrf_of(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert len(app.extensions[EXTENSION].vault) == 0
    assert client.post(f"/proposals/{seeded.decision_ids[0]}/approve", data={"csrf_token": token}).status_code == 403


def test_the_api_token_is_never_in_a_page_or_a_log(app: Flask, seeded: Any, caplog: pytest.LogCaptureFixture,
                                                   sim: Any) -> None:
    caplog.set_level(logging.DEBUG)
    c = app.test_client()
    bodies = [sign_in(c).get_data(as_text=True)]
    token = csrf_of(c)
    bodies.append(c.get("/").get_data(as_text=True))
    c.post(f"/proposals/{seeded.decision_ids[0]}/approve", data={"csrf_token": token})
    bodies += [c.get("/").get_data(as_text=True), c.get("/history").get_data(as_text=True)]
    [write] = writes(sim)
    jwt = write.headers["authorization"].removeprefix("Bearer ")
    assert len(jwt) > 20
    assert all(jwt not in b for b in bodies)
    assert jwt not in caplog.text
    cookie = c.get_cookie("plantbot_session")
    assert cookie is not None and jwt not in cookie.value


def test_a_post_the_platform_refuses_for_now_returns_to_the_queue_and_posts_once_later(
        client: FlaskClient, seeded: Any, store: Store, sim: Any, flavor: str) -> None:
    from bot.sim.faults import FaultPlan

    did = seeded.decision_ids[0]
    path = "/v1/identifications" if flavor == "inat-v1" else "/identifications.json"
    sim.faults = FaultPlan.parse([f"POST {path}=status:503@1x1"])
    resp = client.post(f"/proposals/{did}/approve", data={"csrf_token": csrf_of(client), "back": "/"})
    assert resp.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "back in the queue" in page and f'data-testid="proposal-{did}"' in page
    assert statuses(store)[did] == "proposed"
    resp = client.post(f"/proposals/{did}/approve", data={"csrf_token": csrf_of(client), "back": "/"})
    assert statuses(store)[did] == "posted"
    observation = sim.world.observations[seeded.observation_ids[0]]
    assert sum(1 for i in observation.identifications if i.user_id == 2) == 1


def test_the_code_exchange_goes_through_the_shared_session_even_in_dry_run(sim: Any, store: Store,
                                                                           tmp_path: Path) -> None:
    app = build_app(make_config(sim, tmp_path, mode="dry-run"), store)
    done = sign_in(app.test_client())
    assert done.status_code == 302 and done.headers["Location"] == "/"
    exchange = [r for r in sim.requests if r.method == "POST" and r.path == "/oauth/token"]
    assert len(exchange) == 1 and exchange[0].headers["user-agent"].startswith("PlantBot/")
    assert writes(sim) == []  # signing in wrote nothing on the platform


def test_the_card_marks_species_not_recorded_in_the_local_flora(client: FlaskClient, store: Store,
                                                                 seeded: Any) -> None:
    first = seeded.decision_ids[0]
    with store.session() as s:
        d = s.get(DecisionRow, first)
        assert d is not None
        shown = sorted(d.predictions, key=lambda p: p.position)[1]  # still in the top 5, weighted down
        d.flora, d.flora_name = "place:6", "Nordvall"
        d.flora_removed = [{"taxon_id": shown.taxon_id, "name": shown.name, "prob": 0.4},
                           {"taxon_id": 999001, "name": "Gone unlisted", "prob": 0.35}]  # pushed out of the top 5
        shown_id = shown.taxon_id
    page = client.get("/").get_data(as_text=True)
    card = page[page.index(f'data-testid="proposal-{first}"'):]
    card = card[:card.index("</article>")]
    assert f'data-testid="flora-{first}-{shown_id}">not recorded in Nordvall<' in card
    assert "<s>Gone unlisted</s>" in card and "35.0%" in card
    assert f'data-testid="flora-{first}-999001">not recorded in Nordvall<' in card
    assert "Local flora</dt><dd>applied (Nordvall)" in card
    other = page[page.index(f'data-testid="proposal-{seeded.decision_ids[1]}"'):]
    assert "not recorded in" not in other[:other.index("</article>")]
