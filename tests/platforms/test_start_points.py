"""Where polling starts and what a backfill lists, on both flavors: newest id, first id since a date, a range."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Secrets
from bot.platforms import create_platform
from bot.sim.model import World
from bot.sim.server import SimServer
from tests.platforms.conftest import make_config, make_world

Factory = Callable[..., SimServer]
DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


def dated_world() -> World:
    """300 plants and 3 insects (ids 1000..1302), observation 1000 + k created k hours after DAY0."""
    world = make_world(n_plants=300, n_insects=3)
    for obs in world.observations.values():
        obs.created_at = (DAY0 + timedelta(hours=obs.id - 1000)).isoformat()
    return world


@pytest.mark.parametrize("flavor", ["inat-v1", "legacy"])
def test_start_points_and_backfill_ranges(sim_factory: Factory, tmp_path: Path, flavor: str) -> None:
    sim = sim_factory(dated_world())
    platform = create_platform(make_config(tmp_path, sim, flavor=flavor, per_page=100), Secrets())
    assert platform.get_newest_id() == 1299  # the newest *plant*: the insects above it do not match
    assert platform.get_first_id_since(date(2026, 3, 5)) == 1096  # 4 days = 96 hours after DAY0
    assert platform.get_first_id_since(date(2027, 1, 1)) is None
    assert platform.get_first_id_since(date(2020, 1, 1)) == 1000
    since, until = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    ids = [o.id for p in platform.get_older_observations(1000, 1290, since, until) for o in p.observations]
    assert ids == list(range(1024, 1048))  # created on March 2nd, oldest first
    ids = [o.id for p in platform.get_older_observations(1030, 1040, None, None) for o in p.observations]
    assert ids == list(range(1031, 1040))  # strictly between the ids


def test_v1_start_requests_are_single_and_filtered(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(dated_world())
    platform = create_platform(make_config(tmp_path, sim, place_id=7, quality_grade="needs_id"), Secrets())
    newest = platform.get_newest_id()
    assert newest == 1299  # odd ids lie in place 7
    platform.get_first_id_since(date(2026, 3, 5))
    listed = [r.query for r in sim.requests if r.path == "/v1/observations"]
    assert len(listed) == 2
    assert (listed[0]["order_by"], listed[0]["order"], listed[0]["per_page"]) == (["id"], ["desc"], ["1"])
    assert listed[1]["created_d1"][0].startswith("2026-03-05") and listed[1]["order"] == ["asc"]
    assert all(q["place_id"] == ["7"] and q["quality_grade"] == ["needs_id"] for q in listed)
