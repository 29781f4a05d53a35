"""Fixtures for the review UI tests: a simulator with a tiny world and a fresh store."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from bot.sim.model import World
from bot.sim.world import MODERATOR_USER_ID, WorldSpec, make_world
from tests.web.review_ui_helpers import MODERATOR


@pytest.fixture(scope="session")
def world_template() -> World:
    """A tiny deterministic world (photos rendered once per test session)."""
    world, _ = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=6,
                                    photos_per_observation=(2, 2), non_plant_fraction=0.0,
                                    photo_size=(96, 72), seed=3))
    assert world.users[MODERATOR_USER_ID].login == MODERATOR
    return world


@pytest.fixture(params=["inat-v1", "legacy"])
def flavor(request: pytest.FixtureRequest) -> str:
    """The review UI runs against both API flavors: a test that asks for `flavor` runs once for each."""
    return str(request.param)


@pytest.fixture
def sim(world_template: World) -> Iterator[Any]:
    from bot.sim.server import SimServer

    server = SimServer(copy.deepcopy(world_template)).start()
    try:
        yield server
    finally:
        server.stop()



