"""Retries, Retry-After, resets, the request rate and the daily cap, against the simulator's faults.

Each test makes only a handful of requests: the 1/s test really waits a second per request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Secrets
from bot.errors import BudgetExhausted, PlatformError
from bot.platforms import create_platform
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from tests.platforms.conftest import BOT_LOGIN, SPECIES_A, make_config, make_world

Factory = Callable[..., SimServer]


def _poll_ids(platform: object, cursor: int = 0) -> list[int]:
    return [o.id for p in platform.get_new_observations(cursor) for o in p.observations]  # type: ignore[attr-defined]


def _polls(sim: SimServer) -> list[tuple[int, str | None]]:
    return [(r.status, r.fault) for r in sim.requests if r.path == "/v1/observations"]


def test_5xx_and_reset_are_retried_then_succeed(sim_factory: Factory, tmp_path: Path) -> None:
    plan = FaultPlan([FaultRule("GET /v1/observations", "status", status=503, times=1),
                      FaultRule("GET /v1/observations", "reset", times=1)])
    sim = sim_factory(faults=plan)
    platform = create_platform(make_config(tmp_path, sim), Secrets())
    assert _poll_ids(platform) == list(range(1000, 1010))
    assert _polls(sim) == [(503, "status"), (0, "reset"), (200, None)]


def test_persistent_5xx_gives_up_with_one_line(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(faults=FaultPlan([FaultRule("GET /v1/observations", "status", status=502)]))
    platform = create_platform(make_config(tmp_path, sim, max_retries=2), Secrets())
    with pytest.raises(PlatformError) as err:
        _poll_ids(platform)
    assert "HTTP 502" in str(err.value) and "\n" not in str(err.value)
    assert len(_polls(sim)) == 3  # the request and two retries, then the cycle leaves it for next time
    assert err.value.status == 502 and not err.value.throttled


def test_persistent_429_is_a_throttled_error_with_its_retry_after(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(faults=FaultPlan([FaultRule("GET /v1/observations", "status", status=429, retry_after=0)]))
    platform = create_platform(make_config(tmp_path, sim, max_retries=1), Secrets())
    with pytest.raises(PlatformError) as err:
        _poll_ids(platform)
    assert err.value.status == 429 and err.value.retry_after == 0.0 and err.value.throttled


def test_429_waits_for_retry_after(sim_factory: Factory, tmp_path: Path) -> None:
    rule = FaultRule("GET /v1/observations", "status", status=429, retry_after=1.0, times=1)
    sim = sim_factory(faults=FaultPlan([rule]))
    platform = create_platform(make_config(tmp_path, sim), Secrets())
    assert len(_poll_ids(platform)) == 10
    first, second = (r for r in sim.requests if r.path == "/v1/observations")
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 0.95


def test_writes_retry_only_when_refused(sim_factory: Factory, tmp_path: Path) -> None:
    plan = FaultPlan([FaultRule("POST /v1/identifications", "status", status=429, retry_after=0, times=1),
                      FaultRule("POST /v1/comments", "status", status=500, times=1)])
    sim = sim_factory(faults=plan)
    jwt = sim.issue_jwt(BOT_LOGIN)
    platform = create_platform(make_config(tmp_path, sim), Secrets(api_token=jwt))
    assert platform.post_identification(jwt, 1001, SPECIES_A, "x") > 0  # 429: nothing done, resent
    with pytest.raises(PlatformError, match="HTTP 500"):  # 500: it may have been done; never resent
        platform.post_comment(jwt, 1001, "x")
    assert [(r.path, r.status) for r in sim.writes] == [
        ("/v1/identifications", 429), ("/v1/identifications", 200), ("/v1/comments", 500)]


def test_rate_never_above_one_per_second_even_while_retrying(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(make_world(n_plants=8), faults=FaultPlan([
        FaultRule("GET /v1/observations", "status", status=503, times=1)]))
    cfg = make_config(tmp_path, sim, per_page=4, requests_per_second=1.0, requests_per_minute=60)
    assert len(_poll_ids(create_platform(cfg, Secrets()))) == 8
    assert len(sim.requests) == 4  # 503, page 1, page 2, empty page 3
    assert sim.max_requests_in_window(1.0) == 1


def test_rate_limit_is_shared_between_processes(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(make_world(n_plants=2))
    cfg = make_config(tmp_path, sim, requests_per_second=1.0, requests_per_minute=60)
    a, b = create_platform(cfg, Secrets()), create_platform(cfg, Secrets())  # same bucket file
    _poll_ids(a)
    _poll_ids(b)
    assert len(sim.requests) == 2 and sim.max_requests_in_window(1.0) == 1


def test_daily_cap_pauses_polling_until_the_next_day(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(make_world(n_plants=8))
    offset = [0.0]

    def clock() -> float:
        import time

        return time.time() + offset[0]

    platform = create_platform(make_config(tmp_path, sim, per_page=4, requests_per_day=3), Secrets(), clock=clock)
    pages = platform.get_new_observations(0)
    assert [o.id for o in next(pages).observations] == [1000, 1001, 1002, 1003]
    assert [o.id for o in next(pages).observations] == [1004, 1005, 1006, 1007]
    assert list(pages) == []  # the third request, an empty page
    with pytest.raises(BudgetExhausted, match="daily API request budget"):
        _poll_ids(platform, 1007)
    status = platform.budget_status()
    assert status["paused"] and status["requests_last_24h"] == 3 and status["resumes_at"]
    assert len(sim.requests) == 3  # the refused request never left
    offset[0] = 86400 + 1  # the next day
    sim.world.observations[1100] = sim.world.observations[1007].__class__(
        id=1100, user_id=1, photo_ids=[5000], taxon_id=SPECIES_A)
    assert _poll_ids(platform, 1007) == [1100]
    assert not platform.budget_status()["paused"]


def test_cut_garbled_and_slow_answers_are_retried(sim_factory: Factory, tmp_path: Path) -> None:
    plan = FaultPlan([FaultRule("GET /v1/observations", "truncate", times=1),
                      FaultRule("GET /v1/observations", "corrupt", times=1),
                      FaultRule("GET /v1/observations", "slow", delay=1.5, times=1)])
    sim = sim_factory(faults=plan)
    platform = create_platform(make_config(tmp_path, sim, timeout_seconds=0.5, max_retries=3), Secrets())
    assert _poll_ids(platform) == list(range(1000, 1010))
    assert [fault for _, fault in _polls(sim)] == ["truncate", "corrupt", "slow", None]


def test_always_garbled_json_is_one_line_error(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(faults=FaultPlan([FaultRule("GET /v1/observations", "corrupt")]))
    with pytest.raises(PlatformError) as err:
        _poll_ids(create_platform(make_config(tmp_path, sim), Secrets()))
    assert "\n" not in str(err.value) and len(_polls(sim)) == 3


def test_a_write_whose_answer_is_garbled_is_not_sent_again(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(faults=FaultPlan([FaultRule("POST /v1/identifications", "corrupt", times=1)]))
    platform = create_platform(make_config(tmp_path, sim), Secrets(api_token=sim.issue_jwt(BOT_LOGIN)))
    token = platform.get_token()
    with pytest.raises(PlatformError):
        platform.post_identification(token, 1001, SPECIES_A, "checked by a person")
    assert len([r for r in sim.writes if r.path == "/v1/identifications"]) == 1  # stored once, never re-sent


def test_json_that_does_not_parse_is_read_again_but_a_write_is_never_sent_twice(sim_factory: Factory,
                                                                               tmp_path: Path) -> None:
    """Guards the one override of a pyinaturalist private hook (`PlantBotSession._validate_json`): the
    library re-sends a request whose JSON does not parse; we let it for reads and stop it for writes."""
    plan = FaultPlan([FaultRule("GET /v1/observations", "corrupt", times=1),
                      FaultRule("POST /v1/identifications", "corrupt", times=1)])
    sim = sim_factory(faults=plan)
    jwt = sim.issue_jwt(BOT_LOGIN)
    platform = create_platform(make_config(tmp_path, sim), Secrets(api_token=jwt))
    assert _poll_ids(platform) == list(range(1000, 1010))
    assert _polls(sim) == [(200, "corrupt"), (200, None)]  # the library read it again
    with pytest.raises(PlatformError, match="not valid JSON"):
        platform.post_identification(jwt, 1001, SPECIES_A, "x")
    assert [r.path for r in sim.writes] == ["/v1/identifications"]  # sent once: the ledger reconciles it
