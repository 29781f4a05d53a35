"""Issue 3's acceptance per posting mode, against the simulator, through `plantbot run`.

dry-run sends zero writes (even with approvals); review posts exactly the approved proposals with the
moderator's token; auto posts every eligible decision once.  Every write body is checked against the
API's own OpenAPI description.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.config import Secrets, load_config
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.post import post_decision
from bot.sim.server import SimServer
from bot.store import Store
from bot.store.models import DecisionRow, PostRow
from bot.store.records import list_decisions
from bot.store.review import record_action
from bot.store.values import DecisionValue
from tests.post_world import (
    BOT,
    MODERATOR,
    OBSERVATIONS,
    POSTABLE,
    body_schema,
    build_bundle,
    build_world,
    load_spec,
    validate,
    write_config,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, protos = build_world()
    return build_bundle(tmp_path_factory.mktemp("bundle") / "bundle", protos)


@pytest.fixture(params=["inat-v1", "legacy"])
def flavor(request: pytest.FixtureRequest) -> str:
    """Every mode runs against both API flavors."""
    return str(request.param)


@pytest.fixture()
def sim() -> Iterator[SimServer]:
    world, _ = build_world()
    with SimServer(world) as server:
        yield server


def user_token(sim: SimServer, flavor: str, login: str) -> str:
    """What a user's token is on each flavor: a JWT on v1, a (non-expiring) OAuth access token on a fork."""
    return sim.issue_jwt(login) if flavor == "inat-v1" else sim.issue_access_token(login)


def run_daemon_once(config: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--max-cycles", "1"])
    assert result.exit_code == 0, result.output


def decisions(db: Path) -> dict[int, DecisionValue]:
    store = Store(db)
    try:
        with store.session() as s:
            return {d.observation_id: d for d in list_decisions(s)}
    finally:
        store.close()


def bot_posts(sim: SimServer, login: str) -> dict[int, list[tuple[str, int | None]]]:
    """What the simulator holds by `login`, per observation: ("identification", taxon) / ("comment", None)."""
    uid = next(u.id for u in sim.world.users.values() if u.login == login)
    out: dict[int, list[tuple[str, int | None]]] = {}
    for oid, obs in sim.world.observations.items():
        items: list[tuple[str, int | None]] = [("identification", i.taxon_id) for i in obs.identifications
                                               if i.user_id == uid]
        items += [("comment", None) for c in obs.comments if c.user_id == uid]
        if items:
            out[oid] = items
    return out


def check_bodies(sim: SimServer, flavor: str = "inat-v1") -> list[dict[str, Any]]:
    """Every write the simulator received matches the documented body schema (v1) or is the Rails
    form the forks take (legacy); returns the bodies."""
    if flavor == "legacy":
        assert all(r.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
                   for r in sim.writes)
        return [r.json for r in sim.writes]
    spec = load_spec()
    bodies = []
    for req in sim.writes:
        path = req.path.removeprefix("/v1")
        problems = validate(spec, req.json, body_schema(spec, path))
        assert not problems, (req.path, problems)
        assert req.headers.get("content-type", "").startswith("application/json")
        bodies.append(req.json)
    return bodies


def test_dry_run_sends_zero_writes_even_with_approvals(sim: SimServer, bundle: Path, tmp_path: Path,
                                                      flavor: str) -> None:
    config = write_config(tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, bundle=bundle,
                          mode="dry-run", tmp=tmp_path, flavor=flavor)
    run_daemon_once(config)
    cfg = load_config(config)
    rows = decisions(cfg.database_path)
    assert set(rows) == set(OBSERVATIONS)
    assert all(d.status == "recorded" and d.dry_run for d in rows.values())
    assert {oid: (d.kind, d.taxon_id) for oid, d in rows.items() if oid in POSTABLE} == {
        oid: ("species" if kind == "identification" else "genus" if taxon == 301 else "family", taxon)
        for oid, (kind, taxon) in POSTABLE.items()}
    # A moderator approving one anyway: the dry-run platform refuses to write.
    store = Store(cfg.database_path)
    platform = create_platform(cfg, Secrets(), dry_run=True)
    with store.session() as s:
        s.get(DecisionRow, rows[101].id).status = "approved"  # type: ignore[union-attr]
    outcome = post_decision(store, platform, rows[101].id, token=user_token(sim, flavor, MODERATOR),
                            user_login=MODERATOR, mode=RunMode.REVIEW, cfg=cfg)
    store.close()
    assert outcome.status == "skipped"
    assert sim.writes == []


def test_review_posts_exactly_the_approved_proposals_with_the_moderators_token(sim: SimServer, bundle: Path,
                                                                              tmp_path: Path, flavor: str) -> None:
    config = write_config(tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, bundle=bundle,
                          mode="review", tmp=tmp_path, flavor=flavor)
    run_daemon_once(config)
    cfg = load_config(config)
    rows = decisions(cfg.database_path)
    proposed = {oid for oid, d in rows.items() if d.status == "proposed"}
    assert proposed == set(POSTABLE) | {105, 106}  # opt-outs are only refused at posting time
    assert sim.writes == []  # nothing before a moderator acts

    jwt = user_token(sim, flavor, MODERATOR)
    store = Store(cfg.database_path)
    platform = create_platform(cfg, Secrets())
    outcomes = {}
    for oid in (101, 103, 105):  # a species, a genus comment, and an opted-out observer
        with store.session() as s:
            record_action(s, rows[oid].id, "approve", MODERATOR)
        outcomes[oid] = post_decision(store, platform, rows[oid].id, token=jwt, user_login=MODERATOR,
                                      mode=RunMode.REVIEW, cfg=cfg)
    with store.session() as s:
        record_action(s, rows[102].id, "reject", MODERATOR, reason="looks like a beech")
    assert {oid: o.status for oid, o in outcomes.items()} == {101: "posted", 103: "posted", 105: "skipped"}
    again = post_decision(store, platform, rows[101].id, token=jwt, user_login=MODERATOR, mode=RunMode.REVIEW, cfg=cfg)
    assert again.status == "already_posted"

    assert bot_posts(sim, MODERATOR) == {101: [("identification", 401)], 103: [("comment", None)]}
    assert {r.headers.get("authorization") for r in sim.writes} == {f"Bearer {jwt}"}
    bodies = check_bodies(sim, flavor)
    ident = next(b["identification"] for b in bodies if "identification" in b)
    assert ident.get("vision") in (None, False)
    assert "moderator" in ident["body"] and "plants-test" in ident["body"]
    assert all(not i.vision for o in sim.world.observations.values() for i in o.identifications)

    run_daemon_once(config)  # the review-mode daemon itself never posts
    assert len(sim.writes) == 2
    with store.session() as s:
        ledger = {p.observation_id: (p.status, p.user_login, p.mode) for p in s.scalars(select(PostRow))}
    store.close()
    assert ledger == {101: ("posted", MODERATOR, "review"), 103: ("posted", MODERATOR, "review")}


def test_auto_posts_every_eligible_decision_once(sim: SimServer, bundle: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, flavor: str) -> None:
    monkeypatch.setenv("PLANTBOT_API_TOKEN", user_token(sim, flavor, BOT))
    config = write_config(tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, bundle=bundle,
                          mode="auto", tmp=tmp_path, flavor=flavor)
    run_daemon_once(config)
    expected = {oid: [(kind, taxon if kind == "identification" else None)] for oid, (kind, taxon) in POSTABLE.items()}
    assert bot_posts(sim, BOT) == expected
    bodies = check_bodies(sim, flavor)
    assert all("Not reviewed by a person" in json.dumps(b) for b in bodies)
    rows = decisions(load_config(config).database_path)
    assert {oid: d.status for oid, d in rows.items()} == {101: "posted", 102: "posted", 103: "posted",
                                                          104: "posted", 105: "opted_out", 106: "opted_out"}
    writes = len(sim.writes)
    run_daemon_once(config)  # a second daemon run: nothing new to post
    assert len(sim.writes) == writes
    assert bot_posts(sim, BOT) == expected


def test_status_reports_queue_posts_and_budget(sim: SimServer, bundle: Path, tmp_path: Path, flavor: str) -> None:
    config = write_config(tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, bundle=bundle,
                          mode="review", tmp=tmp_path, flavor=flavor)
    run_daemon_once(config)
    result = CliRunner().invoke(main, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["last_cycle"]["seen"] == len(OBSERVATIONS) and doc["last_cycle"]["status"] == "ok"
    assert doc["queue"] == {"species": 4, "genus": 1, "family": 1}
    assert doc["posts"] == {}
    assert isinstance(doc["budget"], dict) and doc["budget"]["requests_last_24h"] > 0
    text = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert text.exit_code == 0 and "review queue" in text.output
