"""Fixtures of the simulator tests: a fresh tiny world and a running simulator serving it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.sim.model import World
from bot.sim.server import SimServer
from tests.sim.simtiny import make_world


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def sim(world: World) -> Iterator[SimServer]:
    with SimServer(world) as server:
        yield server
