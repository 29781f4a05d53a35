"""The review UI's Withdraw page: a moderator withdraws their own posted identifications, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bot.report.build import build_report
from bot.store.db import Store
from bot.store.models import PostRow
from bot.store.posting import list_posts
from bot.store.review import list_review_actions
from bot.store.withdrawals import left_standing, mark_retracted
from tests.web.review_ui_helpers import MODERATOR, build_app, csrf_of, make_config, seed_proposals, sign_in


@pytest.fixture(params=["inat-v1", "legacy"])
def client(request: pytest.FixtureRequest, sim: Any, store: Store, tmp_path: Path) -> FlaskClient:
    app = build_app(make_config(sim, tmp_path, flavor=request.param), store)
    c = app.test_client()
    assert sign_in(c).status_code == 302
    return c


def approve_two(client: FlaskClient, sim: Any, store: Store) -> list[int]:
    """Two proposals approved and posted under the moderator's account; returns their ledger ids."""
    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "species"))
    token = csrf_of(client)
    for did in seeded.decision_ids:
        assert client.post(f"/proposals/{did}/approve", data={"csrf_token": token}).status_code == 302
    with store.session() as s:
        return list(s.scalars(select(PostRow.id).where(PostRow.status == "posted").order_by(PostRow.id)))


def current_of(sim: Any, remote_id: int) -> bool:
    with sim.lock:
        return next(i.current for o in sim.world.observations.values() for i in o.identifications
                    if i.id == remote_id)


def test_withdraw_own_identification_exactly_once(client: FlaskClient, sim: Any, store: Store,
                                                  tmp_path: Path) -> None:
    first, second = approve_two(client, sim, store)
    with store.session() as s:
        mark_retracted(s, "v1")
        remote = s.get(PostRow, first).remote_id  # type: ignore[union-attr]
    page = client.get("/withdrawals").get_data(as_text=True)
    assert f'data-testid="withdraw-{first}"' in page and f'data-testid="withdraw-{second}"' in page
    assert "(retracted)" in page and f"<td>{MODERATOR}</td><td>2</td>" in page  # left standing: 2
    writes_before = len(sim.writes)
    token = csrf_of(client)
    done = client.post(f"/withdrawals/{first}", data={"csrf_token": token}, follow_redirects=True)
    assert f"Identification {remote} on observation" in done.get_data(as_text=True)
    assert current_of(sim, remote) is False
    assert len(sim.writes) == writes_before + 1
    again = client.post(f"/withdrawals/{first}", data={"csrf_token": token}, follow_redirects=True)
    assert "already withdrawn" in again.get_data(as_text=True) and len(sim.writes) == writes_before + 1
    with store.session() as s:
        ledger = list_posts(s, action="withdraw")
        acts = list_review_actions(s, action="withdraw")
        standing = left_standing(s)
    assert [(p.remote_id, p.status, p.user_login) for p in ledger] == [(remote, "posted", MODERATOR)]
    assert [a.moderator for a in acts] == [MODERATOR]  # in the history
    assert [p.post_id for p in standing[MODERATOR]] == [second]
    history = client.get("/history").get_data(as_text=True)
    assert "withdraw" in history
    figures = build_report(store, tmp_path / "report")  # and in the audit report
    assert {"moderator": MODERATOR, "action": "withdraw", "n": 1} in figures["moderators"]
    assert {"action": "withdraw", "kind": "identification", "status": "posted", "n": 1} in figures["ledger"]
    page = client.get("/withdrawals").get_data(as_text=True)
    assert f'data-testid="withdraw-{first}"' not in page and f"<td>{MODERATOR}</td><td>1</td>" in page


def test_another_moderators_identification_is_not_withdrawn(client: FlaskClient, sim: Any, store: Store) -> None:
    first, _ = approve_two(client, sim, store)
    with store.session() as s:
        s.execute(update(PostRow).where(PostRow.id == first).values(user_login="someone-else"))
        remote = s.get(PostRow, first).remote_id  # type: ignore[union-attr]
    writes_before = len(sim.writes)
    page = client.get("/withdrawals").get_data(as_text=True)
    assert f'data-testid="withdraw-{first}"' not in page
    resp = client.post(f"/withdrawals/{first}", data={"csrf_token": csrf_of(client)}, follow_redirects=True)
    assert "only they can withdraw it" in resp.get_data(as_text=True)
    assert len(sim.writes) == writes_before and current_of(sim, remote) is True


def test_withdraw_needs_a_session_and_csrf(client: FlaskClient, sim: Any, store: Store) -> None:
    first, _ = approve_two(client, sim, store)
    writes_before = len(sim.writes)
    assert client.post(f"/withdrawals/{first}", data={"csrf_token": "forged"}).status_code == 400
    assert len(sim.writes) == writes_before
