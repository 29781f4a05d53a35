"""Acceptance: known posts, the simulator changes community taxa, `audit refresh`, hand-computed figures."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from bot.config import Config, Secrets
from bot.platforms import create_platform
from bot.report.build import build_report
from bot.report.outcomes import refresh_outcomes
from bot.sim.model import SimComment, SimIdentification, SimObservation, SimTaxon, SimUser, World
from bot.sim.server import SimServer
from bot.store.audit import latest_outcomes
from bot.store.db import Store
from bot.store.models import OutcomeRow
from tests.audit_helpers import CASES, T0, TAXA, TRACKED, Case, seed
from tests.platforms.conftest import make_config
from tests.support.simconfig import write_sim_config

USERS = {"alice": 1, "observer": 2, "bob": 3}


def make_world(cases: list[Case] = CASES) -> World:
    """The scenario's observations as first posted: no community taxon anywhere yet."""
    w = World()
    for tid, (name, rank, parent) in TAXA.items():
        w.taxa[tid] = SimTaxon(tid, name, rank, parent, "Plantae")
    for login, uid in USERS.items():
        w.users[uid] = SimUser(uid, login)
    for c in cases:
        obs = SimObservation(id=c.observation_id, user_id=USERS["observer"], photo_ids=[])
        author = USERS[c.approver or "alice"]
        if c.post_kind == "identification" and c.taxon_id:
            obs.identifications.append(SimIdentification(id=c.remote_id or 0, user_id=author,
                                                         taxon_id=c.posted_taxon or c.taxon_id))
        if c.post_kind == "comment":
            obs.comments.append(SimComment(id=c.remote_id or 0, user_id=author, body="a genus comment"))
        w.observations[c.observation_id] = obs
    return w


def community_acts(sim: SimServer, cases: list[Case] = CASES) -> None:
    """What the community (and curators, and observers) did after the posts."""
    with sim.lock:
        for c in cases:
            obs = sim.world.observations[c.observation_id]
            obs.community_taxon_id = c.community
            obs.taxon_id = c.community
            if c.post_gone == "deleted":
                obs.deleted = True
            for ident in obs.identifications:
                if ident.id == c.remote_id and c.post_gone == "withdrawn":
                    ident.current = False
            for comment in obs.comments:
                if comment.id == c.remote_id and c.post_gone == "hidden":
                    comment.hidden = True


def sim_config(tmp_path: Path, sim: SimServer, flavor: str = "inat-v1") -> Config:
    cfg = make_config(tmp_path, sim, flavor=flavor, max_retries=1)
    cfg.store.database = str(tmp_path / "audit.sqlite3")
    return cfg


@pytest.fixture()
def sim() -> Iterator[SimServer]:
    with SimServer(make_world()) as server:
        yield server


@pytest.fixture(params=["inat-v1", "legacy"])
def flavor(request: pytest.FixtureRequest) -> str:
    """Every audit test runs against both API flavors."""
    return str(request.param)


def test_refresh_against_the_simulator_classifies_every_case(sim: SimServer, tmp_path: Path,
                                                            flavor: str) -> None:
    cfg = sim_config(tmp_path, sim, flavor)
    store = Store(cfg.database_path)
    seed(store)
    platform = create_platform(cfg, Secrets(), dry_run=True)

    first = refresh_outcomes(store, platform, cfg, now=T0 + timedelta(days=1))
    assert first["checked"] == 12 and first["pending"] == 12  # nobody has weighed in yet
    assert first["requests"] == len(sim.requests)  # the summary counts what was sent

    community_acts(sim)
    before = len(sim.requests)
    second = refresh_outcomes(store, platform, cfg, now=T0 + timedelta(days=2))
    assert second["requests"] == len(sim.requests) - before
    assert {k: second[k] for k in ("confirmed", "refined", "contradicted", "pending", "gone")} == \
        {"confirmed": 2, "refined": 2, "contradicted": 3, "pending": 2, "gone": 3}

    with store.session() as s:
        latest = latest_outcomes(s)
        n_rows = len(s.scalars(select(OutcomeRow.id)).all())
    assert {d: o.outcome for d, o in latest.items()} == {c.decision_id: c.expected for c in TRACKED}
    assert (latest[6].post_state, latest[7].post_state, latest[10].post_state) == ("deleted", "withdrawn", "hidden")
    assert latest[2].community_taxon_id == 40 and latest[1].checked_at == T0 + timedelta(days=2)
    assert n_rows == 24  # both checks kept, for trends

    # reads only: no write request, and never more than 30 ids in one observations request
    assert sim.writes == []
    for req in sim.requests:
        path = urlparse(req.path).path
        if path.startswith("/v1/observations/"):
            assert len(path.rsplit("/", 1)[1].split(",")) <= 30
    if flavor == "legacy":  # one batched list read per refresh; single reads only for comments
        batched = [r for r in sim.requests if r.path == "/observations.json"]
        assert len(batched) == 2 and all(len(r.query["id[]"]) == 12 for r in batched)
        singles = {r.path for r in sim.requests if r.path.startswith("/observations/")}
        assert singles <= {f"/observations/{c.observation_id}.json" for c in CASES if c.post_kind == "comment"}

    fig = build_report(store, tmp_path / "report")
    posted, dry = fig["outcomes"]["posted"], fig["outcomes"]["would-post"]
    assert posted["precision"] == pytest.approx(3 / 5) and dry["precision"] == pytest.approx(1 / 2)
    rank = {r["group"]: r["precision"] for r in fig["precision"]["rank"] if r["source"] == "posted"}
    assert rank == {"species": pytest.approx(2 / 3), "genus": 1.0, "family": 0.0}
    trend = {(r["day"], r["source"], r["outcome"]): r["n"] for r in fig["outcomes_over_time"]}
    assert trend[("2026-03-02", "posted", "pending")] == 10 and trend[("2026-03-03", "posted", "gone")] == 3
    store.close()


def test_deleted_observations_are_not_read_again(sim: SimServer, tmp_path: Path, flavor: str) -> None:
    cfg = sim_config(tmp_path, sim, flavor)
    store = Store(cfg.database_path)
    seed(store, copy.deepcopy(CASES))
    platform = create_platform(cfg, Secrets(), dry_run=True)
    community_acts(sim)
    refresh_outcomes(store, platform, cfg, now=T0)
    n_before = len(sim.requests)
    again = refresh_outcomes(store, platform, cfg, now=T0 + timedelta(hours=1))
    assert again["checked"] == 11
    assert not any("106" in r.path or "106" in r.query.get("id[]", []) for r in sim.requests[n_before:])
    store.close()


def test_cli_audit_refresh(sim: SimServer, tmp_path: Path, flavor: str) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    c = sim_config(tmp_path, sim, flavor)
    store = Store(c.database_path)
    seed(store)
    store.close()
    cfg = write_sim_config(tmp_path / "config.toml", api_url=c.platform.api_url, site_url=c.platform.site_url,
                           state=tmp_path, sections={"platform": {"flavor": flavor, "requests_per_second": 1000.0},
                                                     "store": {"database": c.database_path}})
    community_acts(sim)
    result = CliRunner().invoke(main, ["--config", str(cfg), "audit", "refresh", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert "checked: 5" in result.output and sim.writes == []
    assert f"requests: {len(sim.requests)}" in result.output
