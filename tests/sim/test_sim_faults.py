"""Fault injection, the request log and the command-line entry point of the simulator."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image, UnidentifiedImageError

from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.model import World
from bot.sim.server import RecordedRequest, SimServer
from tests.sim.simtiny import BIG, RUBIGINOSA

REPO = Path(__file__).resolve().parents[2]


def plan(*specs: str, seed: int = 0) -> FaultPlan:
    return FaultPlan.parse(list(specs), seed=seed)


def test_parse_cli_specs() -> None:
    rules = plan("GET /v1/observations*=status:503@0.2", "GET /photos/*=corrupt@0.1", "*=slow:1.5@0.05",
                 "POST /v1/identifications=hold:30", "GET /v1/*=status:429:2.5", "GET /photos/*=reset@1x3",
                 "GET /photos/*=redirect:http://127.0.0.2:8000").rules
    assert rules[0] == FaultRule("GET /v1/observations*", "status", 0.2, status=503)
    assert (rules[1].kind, rules[1].probability) == ("corrupt", 0.1)
    assert (rules[2].route, rules[2].kind, rules[2].delay, rules[2].probability) == ("*", "slow", 1.5, 0.05)
    assert (rules[3].kind, rules[3].delay, rules[3].probability) == ("hold", 30.0, 1.0)
    assert (rules[4].status, rules[4].retry_after) == (429, 2.5)
    assert (rules[5].kind, rules[5].times) == ("reset", 3)
    assert rules[6].target == "http://127.0.0.2:8000"
    for bad in ("GET /x=explode", "GET /x=status:abc", "GET /x=slow@2", "GET /x=redirect", "nothing"):
        with pytest.raises(ValueError):
            plan(bad)


def test_probability_is_deterministic_per_seed() -> None:
    def rolls(seed: int) -> list[bool]:
        faults = plan("GET /v1/*=status:503@0.5", seed=seed)
        return [faults.pick("GET", "/v1/observations") is not None for _ in range(40)]

    assert rolls(7) == rolls(7) and 5 < sum(rolls(7)) < 35
    assert rolls(7) != rolls(8)
    assert plan("GET /v1/*=status:503").pick("POST", "/v1/identifications") is None


def test_a_rule_with_a_param_hits_only_requests_carrying_it() -> None:
    """A fork polls and reads by id on one path: `with_param` fails the reads and lets polling through."""
    faults = FaultPlan([FaultRule("GET /observations.json", "status", with_param="id[]")])
    assert faults.pick("GET", "/observations.json", {"page": ["1"]}) is None
    assert faults.pick("GET", "/observations.json") is None
    assert faults.pick("GET", "/observations.json", {"id[]": ["1", "2"]}) is not None


def test_status_faults_and_times(sim: SimServer) -> None:
    sim.faults = plan("GET /v1/observations=status:429:2@1x1", "GET /v1/observations=status:503@1x1")
    limited = requests.get(f"{sim.api_url}/observations", timeout=10)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    failed = requests.get(f"{sim.api_url}/observations", timeout=10)
    assert failed.status_code == 503 and "Retry-After" not in failed.headers
    assert requests.get(f"{sim.api_url}/observations", timeout=10).status_code == 200
    assert [(r.status, r.fault) for r in sim.requests] == [(429, "status"), (503, "status"), (200, None)]


def test_slow_html_and_reset(sim: SimServer) -> None:
    sim.faults = plan("GET /v1/taxa/*=slow:0.3", "GET /v1/observations=html", "GET /v1/users/*=reset")
    started = time.monotonic()
    assert requests.get(f"{sim.api_url}/taxa/101", timeout=10).json()["results"][0]["name"] == "Rosa"
    assert time.monotonic() - started >= 0.3
    page = requests.get(f"{sim.api_url}/observations", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        page.json()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{sim.api_url}/users/3", timeout=10)
    assert [r.fault for r in sim.requests] == ["slow", "html", "reset"] and sim.requests[-1].status == 0


def test_truncated_and_corrupt_photos(sim: SimServer, world: World) -> None:
    url = f"{sim.url}/photos/{BIG}/large.jpg"
    sim.faults = plan("GET /photos/*=truncate@1x1", "GET /photos/*=corrupt@1x1")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        requests.get(url, timeout=10)
    corrupt = requests.get(url, timeout=10)
    assert corrupt.status_code == 200 and len(corrupt.content) == len(world.photos[BIG])
    assert corrupt.content != world.photos[BIG]
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(corrupt.content))
    assert requests.get(url, timeout=10).content == world.photos[BIG]
    assert [r.fault for r in sim.requests] == ["truncate", "corrupt", None]


def test_foreign_host_urls_and_redirects_to_a_second_loopback_server(sim: SimServer) -> None:
    with SimServer(World(), host="127.0.0.2") as foreign:
        sim.faults = plan(f"GET /v1/observations/*=foreign_host:{foreign.url}",
                          f"GET /photos/*=redirect:{foreign.url}")
        obs = requests.get(f"{sim.api_url}/observations/3", timeout=10).json()["results"][0]
        assert obs["photos"][0]["url"] == f"{foreign.url}/photos/{BIG}/square.jpg?1700000000"
        moved = requests.get(f"{sim.url}/photos/{BIG}/medium.jpg?1700000000", allow_redirects=False, timeout=10)
        assert moved.status_code == 302
        assert moved.headers["Location"] == f"{foreign.url}/photos/{BIG}/medium.jpg?1700000000"
        assert foreign.requests == []
        requests.get(f"{sim.url}/photos/{BIG}/medium.jpg", timeout=10)  # a client that follows it
        assert [r.path for r in foreign.requests] == [f"/photos/{BIG}/medium.jpg"]


def test_hold_stores_the_write_before_answering(sim: SimServer, world: World) -> None:
    sim.faults = plan("POST /v1/identifications=hold:30")
    payload = {"identification": {"observation_id": 5, "taxon_id": RUBIGINOSA, "body": "x"}}
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{sim.api_url}/identifications", json=payload, timeout=(5, 0.5),
                      headers={"Authorization": f"Bearer {sim.issue_jwt('moderator')}"})
    assert world.observations[5].identifications[-1].taxon_id == RUBIGINOSA
    assert [(w.path, w.fault, w.status) for w in sim.writes] == [("/v1/identifications", "hold", 0)]


def test_reset_after_storing_a_write(sim: SimServer, world: World) -> None:
    sim.faults = FaultPlan([FaultRule("POST /v1/comments", "reset_after")])
    payload = {"comment": {"parent_type": "Observation", "parent_id": 5, "body": "hello"}}
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{sim.api_url}/comments", json=payload, timeout=10,
                      headers={"Authorization": f"Bearer {sim.issue_jwt('moderator')}"})
    assert [c.body for c in world.observations[5].comments] == ["hello"]


def test_max_requests_in_window(sim: SimServer) -> None:
    for stamp, path in ((0.0, "/v1/a"), (0.5, "/v1/b"), (0.99, "/photos/1"), (1.0, "/v1/c"), (1.2, "/v1/d"),
                        (5.0, "/v1/e")):
        sim.record(RecordedRequest("GET", path, {}, {}, b"", stamp, 200))
    assert sim.max_requests_in_window(1.0) == 4  # 0.5, 0.99, 1.0, 1.2
    assert sim.max_requests_in_window(1.0, path_prefix="/v1/") == 3
    assert sim.max_requests_in_window(0.1) == 2  # 0.99 and 1.0
    assert sim.max_requests_in_window(0.001) == 1
    sim.requests.clear()
    for _ in range(3):
        requests.get(f"{sim.api_url}/taxa/101", timeout=10)
    assert sim.max_requests_in_window(60.0) == 3


def test_refuses_non_loopback_hosts(world: World) -> None:
    for host in ("0.0.0.0", "192.168.1.4", "example.org"):
        with pytest.raises(ValueError):
            SimServer(world, host=host)


def test_serve_cli_serves_a_saved_world_until_sigterm(world: World, tmp_path: Path) -> None:
    world.save(tmp_path / "world")
    code = ("import sys; from bot.sim.server import serve_cli; "
            "serve_cli(sys.argv[1], '127.0.0.1', 0, ['GET /v1/taxa/*=status:503'], 1)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "world")], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        obs = requests.get(f"{url}/v1/observations/3", timeout=10).json()["results"][0]
        assert obs["photos"][0]["url"].startswith(f"{url}/photos/")
        original = obs["photos"][0]["url"].replace("square", "original")
        assert requests.get(original, timeout=10).content == world.photos[BIG]
        assert requests.get(f"{url}/v1/taxa/101", timeout=10).status_code == 503
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
