"""An API that drips its answer or sends a huge one: the request ends at its deadline or its size cap, and a
stopping daemon abandons a request under way at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bot.config import Config
from bot.errors import PlatformError
from bot.platforms import create_platform
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, make_world


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    w, _ = make_world(WorldSpec(families=1, genera_per_family=1, species_per_genus=2, observations=20,
                                photo_size=(48, 36), seed=5))
    return w


def cfg_for(sim: SimServer, tmp_path: Path, **platform: object) -> Config:
    cfg = Config()
    p = cfg.platform
    p.api_url, p.site_url = sim.api_url, sim.url
    p.ratelimit_path = str(tmp_path / "rl.sqlite3")
    p.requests_per_second, p.requests_per_minute, p.max_retries = 100.0, 10000, 0
    for key, value in platform.items():
        setattr(p, key, value)
    return cfg


def first_page(cfg: Config) -> object:
    platform = create_platform(cfg, dry_run=True)
    try:
        return next(iter(platform.get_new_observations(0)))
    finally:
        platform.close()


def test_a_dripping_answer_ends_at_the_whole_response_deadline(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan = FaultPlan([FaultRule("GET /v1/observations", "drip", delay=0.05)])
    with SimServer(world, faults=plan) as sim, pytest.raises(PlatformError, match="longer than 1 s"):
        first_page(cfg_for(sim, tmp_path, timeout_seconds=1.0))


def test_an_oversized_answer_is_refused(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with SimServer(world, faults=FaultPlan([FaultRule("GET /v1/observations", "bloat", size=3_000_000)])) as sim:
        with pytest.raises(PlatformError, match="max_response_bytes"):
            first_page(cfg_for(sim, tmp_path, max_response_bytes=1_000_000))
        page = first_page(cfg_for(sim, tmp_path))  # under the default cap the same answer is fine
        assert page.observations  # type: ignore[attr-defined]


def test_abort_abandons_a_request_under_way(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with SimServer(world, faults=FaultPlan([FaultRule("GET /v1/observations", "drip", delay=1.0)])) as sim:
        platform = create_platform(cfg_for(sim, tmp_path, timeout_seconds=600.0), dry_run=True)
        errors: list[BaseException] = []

        def poll() -> None:
            try:
                next(iter(platform.get_new_observations(0)))
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        worker = threading.Thread(target=poll)
        worker.start()
        while not sim.requests:
            time.sleep(0.05)
        time.sleep(0.5)  # the answer is dripping now
        platform.abort()
        worker.join(timeout=60)
        assert not worker.is_alive()
        assert errors and isinstance(errors[0], PlatformError) and "stopping" in str(errors[0])
        with pytest.raises(PlatformError, match="stopping"):  # and nothing new is sent
            next(iter(platform.get_new_observations(0)))
        platform.close()
