"""A community's first day: polling starts at "now" (or a date, or an id), and `backfill` decides the past.

The simulator's world has 500 observations that exist before the bot starts and 30 that arrive
later (they appear when the simulator's clock passes `arrive_after_s`).  Every test runs against both API
flavors (a Rails fork's list has no id or date filter: it walks newest first).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.backfill import BackfillRange, run_backfill
from bot.classifier import Classifier, build_model, load_bundle, save_bundle
from bot.cli import main
from bot.config import Config
from bot.cycle import cursor_key, run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.sim.model import World
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, history_created_at, labels_for, make_world
from bot.store import Store, records
from bot.store.models import DecisionRow
from tests.support.simconfig import sim_config

HISTORY, NEW, ARRIVAL_S = 500, 30, 60.0


class Clock:
    """The simulator's clock, moved by hand: observations arrive when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def world_and_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    torch.manual_seed(0)
    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, history=HISTORY,
                                          observations=NEW, arrive_after_s=ARRIVAL_S, photos_per_observation=(1, 1),
                                          photo_size=(48, 36), seed=5))
    labels = labels_for(species)
    bundle = save_bundle(tmp_path_factory.mktemp("bundle") / "tiny", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    return world, bundle.path


def matching(world: World, ids: range) -> set[int]:
    """What the default query asks for: plants with photos that still need an ID."""
    return {i for i in ids if world.iconic_taxon_name(world.observations[i].taxon_id) == "Plantae"
            and world.observations[i].quality_grade == "needs_id" and world.observations[i].photo_ids}


HISTORY_IDS = range(1000, 1000 + HISTORY)
NEW_IDS = range(1000 + HISTORY, 1000 + HISTORY + NEW)


class Community:
    def __init__(self, tmp_path: Path, world: World, bundle: Path, platform: dict[str, Any]) -> None:
        tmp_path.mkdir()
        self.clock = Clock()
        self.world = world
        self.sim = SimServer(world, clock=self.clock).start()
        self.cfg: Config = sim_config(tmp_path, self.sim, bundle, requests_per_second=200.0, platform=platform)
        self.store = Store(self.cfg.database_path)
        self.classifier = Classifier(load_bundle(bundle), threads=1)

    def cycle(self) -> int:
        platform = create_platform(self.cfg, dry_run=True)
        try:
            return run_cycle(self.cfg, self.store, platform, self.classifier, mode=RunMode.DRY_RUN).decided
        finally:
            platform.close()

    def arrive(self) -> None:
        self.clock.now += ARRIVAL_S + 1

    def decided(self) -> dict[int, int]:
        with self.store.session() as s:
            return dict(s.execute(select(DecisionRow.observation_id, func.count())  # type: ignore[arg-type]
                                  .group_by(DecisionRow.observation_id)).all())

    def live_cursor(self) -> int:
        platform = create_platform(self.cfg, dry_run=True)
        try:
            with self.store.session() as s:
                return records.get_cursor(s, cursor_key(self.cfg, platform))
        finally:
            platform.close()

    def close(self) -> None:
        self.store.close()
        self.sim.stop()


LIST_PATH = {"inat-v1": "/v1/observations", "legacy": "/observations.json"}


@pytest.fixture(params=["inat-v1", "legacy"])
def community(tmp_path: Path, world_and_bundle: tuple[World, Path],  # type: ignore[no-untyped-def]
              request: pytest.FixtureRequest):
    made: list[Community] = []

    def make(**platform: Any) -> Community:  # without keys: the defaults a real install has
        # None leaves the key out of the config
        keys = {"start": None, "quality_grade": None, "flavor": request.param, **platform}
        c = Community(tmp_path / str(len(made)), world_and_bundle[0], world_and_bundle[1], keys)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_a_fresh_install_with_defaults_decides_only_what_arrives(community) -> None:  # type: ignore[no-untyped-def]
    c = community()
    assert c.cycle() == 0  # the 500 existing observations are left alone
    listings = [r for r in c.sim.requests if r.path == LIST_PATH[c.cfg.platform.flavor]]
    assert listings[0].query["per_page"] == ["1"]  # one request for the newest record
    if c.cfg.platform.flavor == "inat-v1":
        assert listings[0].query["order"] == ["desc"]  # a fork lists newest first without being asked
    assert listings[0].query["quality_grade"] == ["needs_id"]  # the default filter, asked for at the start too
    assert c.live_cursor() == max(matching(c.world, HISTORY_IDS))
    c.arrive()
    c.cycle()
    assert set(c.decided()) == matching(c.world, NEW_IDS)
    assert len(matching(c.world, NEW_IDS)) >= 20

    result = CliRunner().invoke(main, ["--config", str(c.cfg.source), "status", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(s["setting"], s["cursor"]) for s in doc["starts"]] == [("now", max(matching(c.world, HISTORY_IDS)))]
    text = CliRunner().invoke(main, ["--config", str(c.cfg.source), "status"]).output
    assert "polling started" in text and "start = now" in text
    assert "False" not in text and "None" not in text


def test_start_at_a_date_decides_exactly_those_created_since(community) -> None:  # type: ignore[no-untyped-def]
    day = history_created_at(400)[:10]  # history observation 400 was created at midnight that day
    c = community(start=day)
    since = {i for i in matching(c.world, HISTORY_IDS) if c.world.observations[i].created_at[:10] >= day}
    assert 0 < len(since) < len(matching(c.world, HISTORY_IDS))
    c.cycle()
    assert set(c.decided()) == since
    c.arrive()
    c.cycle()
    assert set(c.decided()) == since | matching(c.world, NEW_IDS)


def test_backfill_decides_the_past_once_and_leaves_the_live_cursor(community, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = community()
    c.cycle()
    c.arrive()
    c.cycle()
    live = c.live_cursor()
    assert live == max(matching(c.world, NEW_IDS))
    platform = create_platform(c.cfg, dry_run=True)
    try:
        window = BackfillRange(date(2025, 1, 1), None, limit=100)
        first = run_backfill(c.cfg, c.store, platform, c.classifier, window, mode=RunMode.DRY_RUN)
    finally:
        platform.close()
    assert first.seen == 100 and len(c.decided()) == len(matching(c.world, NEW_IDS)) + 100
    result = CliRunner().invoke(main, ["--config", str(c.cfg.source), "backfill", "--since", "2025-01-01",
                                       "--dry-run"])
    assert result.exit_code == 0, result.output
    decided = c.decided()
    assert set(decided) == matching(c.world, HISTORY_IDS) | matching(c.world, NEW_IDS)
    assert max(decided.values()) == 1  # each observation decided once
    again = CliRunner().invoke(main, ["--config", str(c.cfg.source), "backfill", "--since", "2025-01-01"])
    assert again.exit_code == 0 and c.decided() == decided  # resumable: nothing left in the range
    assert c.live_cursor() == live


def test_start_at_an_id_and_unknown_start_values(community, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = community(start=1489)
    c.cycle()
    assert set(c.decided()) == {i for i in matching(c.world, HISTORY_IDS) if i > 1489}
    bad = tmp_path / "bad.toml"
    bad.write_text('[platform]\nstart = "yesterday"\n')
    result = CliRunner().invoke(main, ["--config", str(bad), "config", "check"])
    assert result.exit_code == 2
    assert "[platform] start" in result.output and "yesterday" in result.output
