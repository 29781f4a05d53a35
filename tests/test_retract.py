"""Withdrawing a model version's identifications against the simulator: once, and never in dry-run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.config import Secrets
from bot.platforms import create_platform
from bot.report.outcomes import refresh_outcomes
from bot.report.retract import retract_model_version, withdraw_post
from bot.sim.model import SimUser
from bot.sim.server import SimServer
from bot.store.db import Store
from bot.store.models import DecisionRow, OutcomeRow, PostRow
from bot.store.posting import list_posts, status_report
from bot.store.review import list_review_actions
from tests.audit_helpers import T0, Case, seed
from tests.support.simconfig import write_sim_config
from tests.test_audit_sim import make_world, sim_config

V1 = [
    Case(1, 201, "species", 30, 0.9, 1, post_kind="identification", remote_id=6001, approver="alice"),
    Case(2, 202, "species", 31, 0.8, 2, post_kind="identification", remote_id=6002, approver="alice"),
    Case(3, 203, "species", 32, 0.7, 1, post_kind="identification", remote_id=6003, approver="bob"),
    Case(4, 205, "genus", 20, 0.6, 1, post_kind="comment", remote_id=7005, approver="alice"),
]
V2 = [Case(5, 204, "species", 30, 0.9, 1, post_kind="identification", remote_id=6004, approver="alice")]


@pytest.fixture()
def sim() -> Iterator[SimServer]:
    with SimServer(make_world(V1 + V2)) as server:
        yield server


@pytest.fixture()
def store(store: Store) -> Store:
    """The shared fresh store, seeded with two model versions' posts."""
    seed(store, V1, "v1")
    seed(store, V2, "v2")
    return store


@pytest.fixture(params=["inat-v1", "legacy"])
def flavor(request: pytest.FixtureRequest) -> str:
    """Retracting works against both API flavors."""
    return str(request.param)


def token_of(sim: SimServer, flavor: str, login: str) -> str:
    return sim.issue_jwt(login) if flavor == "inat-v1" else sim.issue_access_token(login)


def ident_path(flavor: str, remote_id: int) -> str:
    return f"/v1/identifications/{remote_id}" if flavor == "inat-v1" else f"/identifications/{remote_id}.json"


def current(sim: SimServer) -> dict[int, bool]:
    with sim.lock:
        return {i.id: i.current for o in sim.world.observations.values() for i in o.identifications}


def test_withdraws_the_versions_identifications_once(sim: SimServer, store: Store, tmp_path: Path,
                                                     flavor: str) -> None:
    cfg = sim_config(tmp_path, sim, flavor)
    platform = create_platform(cfg, Secrets(), dry_run=False)
    token = token_of(sim, flavor, "alice")
    done = retract_model_version(store, platform, cfg, version="v1", token=token, user_login="alice",
                                 dry_run=False)
    assert {r.remote_id: r.status for r in done} == {6001: "withdrawn", 6002: "withdrawn", 6003: "other-author"}
    assert current(sim) == {6001: False, 6002: False, 6003: True, 6004: True}
    assert [(w.method, w.path) for w in sim.writes] == [("PUT", ident_path(flavor, 6001)),
                                                         ("PUT", ident_path(flavor, 6002))]
    assert all(w.json == {"identification": {"current": False if flavor == "inat-v1" else "false"}}
               for w in sim.writes)
    with store.session() as s:
        statuses = dict(s.execute(select(DecisionRow.id, DecisionRow.status)).all())
        ledger = list_posts(s, action="withdraw")
        actions = list_review_actions(s, action="withdraw")
    assert statuses == {1: "withdrawn", 2: "withdrawn", 3: "posted", 4: "posted", 5: "posted"}
    assert sorted((p.remote_id, p.status, p.user_login) for p in ledger) == [(6001, "posted", "alice"),
                                                                            (6002, "posted", "alice")]
    assert {a.moderator for a in actions} == {"alice"} and len(actions) == 2
    with store.session() as s:  # `plantbot status` counts each post once, by its current state
        assert status_report(s).posts == {"posted": 3, "withdrawn": 2}

    again = retract_model_version(store, platform, cfg, version="v1", token=token, user_login="alice",
                                  dry_run=False)
    assert [r.status for r in again] == ["other-author"]
    assert len(sim.writes) == 2  # the re-run sent nothing

    # the audit now sees those posts as withdrawn: gone, out of precision
    counts = refresh_outcomes(store, platform, cfg, now=T0 + timedelta(days=1))
    assert counts["gone"] == 2
    with store.session() as s:
        states = {o.decision_id: o.post_state for o in s.scalars(select(OutcomeRow))}
    assert states[1] == states[2] == "withdrawn" and states[3] == "current"


def test_dry_run_sends_and_writes_nothing(sim: SimServer, store: Store, tmp_path: Path, flavor: str) -> None:
    cfg = sim_config(tmp_path, sim, flavor)
    for dry_platform, dry_flag in ((False, True), (True, False)):
        platform = create_platform(cfg, Secrets(), dry_run=dry_platform)
        listed = retract_model_version(store, platform, cfg, version="v1", token=token_of(sim, flavor, "alice"),
                                       user_login="alice", dry_run=dry_flag)
        assert sorted(r.remote_id for r in listed if r.status == "would-withdraw") == [6001, 6002]
    assert sim.writes == []
    assert current(sim) == {6001: True, 6002: True, 6003: True, 6004: True}
    with store.session() as s:
        assert s.scalars(select(PostRow).where(PostRow.action == "withdraw")).all() == []
        assert set(s.scalars(select(DecisionRow.status))) == {"posted"}


def test_an_intent_left_by_a_crash_is_reconciled_not_resent(sim: SimServer, store: Store,
                                                             tmp_path: Path, flavor: str) -> None:
    cfg = sim_config(tmp_path, sim, flavor)
    platform = create_platform(cfg, Secrets(), dry_run=False)
    token = token_of(sim, flavor, "alice")
    with sim.lock:  # the first withdrawal reached the server, then the process died
        sim.world.observations[201].identifications[0].current = False
    with store.session() as s:
        posts = {p.remote_id: p for p in s.scalars(select(PostRow).where(PostRow.model_version == "v1"))}
        for rid in (6001, 6002):
            p = posts[rid]
            s.add(PostRow(decision_id=p.decision_id, observation_id=p.observation_id, model_version="v1",
                          action="withdraw", kind="identification", taxon_id=p.taxon_id, body="",
                          user_login="alice", mode="review", status="intent", remote_id=rid, attempts=1,
                          created_at=T0))
        ids = {rid: posts[rid].id for rid in (6001, 6002)}
    assert withdraw_post(store, platform, post_id=ids[6001], token=token, user_login="alice") == "withdrawn"
    assert sim.writes == []  # already not current upstream: recorded without a second request
    assert withdraw_post(store, platform, post_id=ids[6002], token=token, user_login="alice") == "withdrawn"
    assert [w.path for w in sim.writes] == [ident_path(flavor, 6002)]
    assert current(sim)[6002] is False


def test_a_refused_withdrawal_is_recorded_and_retried_next_run(sim: SimServer, store: Store,
                                                               tmp_path: Path, flavor: str) -> None:
    cfg = sim_config(tmp_path, sim, flavor)
    platform = create_platform(cfg, Secrets(), dry_run=False)
    # bob's token cannot withdraw alice's identifications (403): recorded as failed, nothing lost
    with store.session() as s:
        s.execute(update(PostRow).where(PostRow.remote_id == 6001).values(user_login="bob"))
    done = retract_model_version(store, platform, cfg, version="v1", token=token_of(sim, flavor, "bob"),
                                 user_login="bob", dry_run=False)
    assert {r.remote_id: r.status for r in done}[6001] == "failed"
    assert current(sim)[6001] is True
    with store.session() as s:
        s.execute(update(PostRow).where(PostRow.remote_id == 6001, PostRow.action == "post")
                  .values(user_login="alice"))
    done = retract_model_version(store, platform, cfg, version="v1", token=token_of(sim, flavor, "alice"),
                                 user_login="alice", dry_run=False)
    assert {r.remote_id: r.status for r in done}[6001] == "withdrawn"
    assert current(sim)[6001] is False
    with store.session() as s:
        rows = [p for p in list_posts(s, action="withdraw") if p.remote_id == 6001]
    assert [(r.status, r.attempts) for r in rows] == [("posted", 2)]


def test_cli_retract_dry_run_and_yes(sim: SimServer, store: Store, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, flavor: str) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    c = sim_config(tmp_path, sim, flavor)
    cfg = write_sim_config(tmp_path / "config.toml", api_url=c.platform.api_url, site_url=c.platform.site_url,
                           state=tmp_path, sections={"platform": {"flavor": flavor, "requests_per_second": 1000.0},
                                                     "store": {"database": store.database}})
    monkeypatch.setenv("PLANTBOT_API_TOKEN", token_of(sim, flavor, "alice"))
    runner = CliRunner()
    dry = runner.invoke(main, ["--config", str(cfg), "retract", "--model-version", "v1", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "6001" in dry.output and "would-withdraw" in dry.output and sim.writes == []
    no = runner.invoke(main, ["--config", str(cfg), "retract", "--model-version", "v1"], input="n\n")
    assert no.exit_code == 0 and "nothing withdrawn" in no.output and sim.writes == []
    yes = runner.invoke(main, ["--config", str(cfg), "retract", "--model-version", "v1", "--yes"])
    assert yes.exit_code == 1, yes.output  # bob's identification is still current: not done
    assert len(sim.writes) == 2 and current(sim)[6001] is False
    assert "1 identification(s) of model version v1 are still current" in yes.output
    assert "bob: 1 (observations 203): posted under bob's own account: bob must withdraw them" in yes.output


def test_review_mode_retract_with_the_bots_token_names_each_moderator_and_fails(
        sim: SimServer, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flavor: str) -> None:
    """Review mode: everything was posted under the moderators' accounts; the bot withdraws nothing."""
    from click.testing import CliRunner

    from bot.cli import main
    from bot.store.withdrawals import left_standing

    c = sim_config(tmp_path, sim, flavor)
    cfg = write_sim_config(tmp_path / "config.toml", api_url=c.platform.api_url, site_url=c.platform.site_url,
                           state=tmp_path, sections={"platform": {"flavor": flavor, "requests_per_second": 1000.0},
                                                     "store": {"database": store.database}})
    with sim.lock:
        sim.world.users[9] = SimUser(9, "plantbot")
    monkeypatch.setenv("PLANTBOT_API_TOKEN", token_of(sim, flavor, "plantbot"))
    result = CliRunner().invoke(main, ["--config", str(cfg), "retract", "--model-version", "v1", "--yes"])
    assert result.exit_code == 1 and sim.writes == []
    assert "3 identification(s) of model version v1 are still current" in result.output
    assert "alice: 2 (observations 201, 202)" in result.output and "bob: 1 (observations 203)" in result.output
    with store.session() as s:  # the review UI's Withdraw page lists the same
        standing = left_standing(s)
    assert {login: [p.remote_id for p in posts] for login, posts in standing.items()} == {
        "alice": [6001, 6002], "bob": [6003]}
