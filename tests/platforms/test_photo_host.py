"""The photo hosts' transport: failures arrive as PhotoHostError with their data, never as requests'."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from bot.config import Config
from bot.errors import PhotoHostError, PhotoRefused, PlatformError
from bot.platforms.photo_host import MAX_REDIRECTS, PhotoHost
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from tests.platforms.conftest import make_world


def config() -> Config:
    cfg = Config()
    cfg.platform.photo_hosts = ["127.0.0.1"]
    cfg.photos.timeout_seconds = 5.0
    return cfg


def no_pin(url: str) -> list[str]:
    return []  # loopback: nothing to pin


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[SimServer]:
    rules: list[FaultRule] = getattr(request, "param", [])
    s = SimServer(make_world(n_plants=2), faults=FaultPlan(rules)).start()
    yield s
    s.stop()


def read(host: PhotoHost, url: str) -> bytes:
    with host.open(url, no_pin) as resp:
        return b"".join(resp.chunks())


def test_a_photo_arrives_through_its_own_plain_session(sim: SimServer) -> None:
    host = PhotoHost(config())
    try:
        assert read(host, f"{sim.url}/photos/5000/medium.jpg") == sim.world.photos[5000]
        assert type(host.session) is requests.Session  # never pyinaturalist's (cached) session
        assert sim.requests[-1].headers["user-agent"].startswith("PlantBot/")
    finally:
        host.close()


@pytest.mark.parametrize("sim", [[FaultRule("GET /photos/*", "status", status=429, retry_after=7)]], indirect=True)
def test_a_throttling_host_says_its_status_and_retry_after(sim: SimServer) -> None:
    host = PhotoHost(config())
    with pytest.raises(PhotoHostError) as caught:
        read(host, f"{sim.url}/photos/5000/medium.jpg")
    assert (caught.value.status, caught.value.retry_after, caught.value.throttled) == (429, 7.0, True)
    assert isinstance(caught.value, PlatformError) and "HTTP 429" in str(caught.value)


@pytest.mark.parametrize("sim", [[FaultRule("GET /photos/*", "status", status=503)]], indirect=True)
def test_a_server_error_is_a_status_not_a_throttle(sim: SimServer) -> None:
    with pytest.raises(PhotoHostError) as caught:
        read(PhotoHost(config()), f"{sim.url}/photos/5000/medium.jpg")
    assert (caught.value.status, caught.value.retry_after, caught.value.throttled) == (503, None, False)


@pytest.mark.parametrize("sim", [[FaultRule("GET /photos/*", "reset")]], indirect=True)
def test_a_dropped_connection_is_a_photo_host_error(sim: SimServer) -> None:
    with pytest.raises(PhotoHostError) as caught:
        read(PhotoHost(config()), f"{sim.url}/photos/5000/medium.jpg")
    assert caught.value.status is None and not isinstance(caught.value, requests.RequestException)


def test_nothing_listening_is_a_photo_host_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nobody answers there
    with pytest.raises(PhotoHostError, match="ConnectionError"):
        read(PhotoHost(config()), f"http://127.0.0.1:{port}/photos/1/medium.jpg")


def test_every_hop_meets_the_guard_and_a_loop_is_refused(sim: SimServer) -> None:
    sim.faults = FaultPlan([FaultRule("GET /photos/*", "redirect", target=sim.url)])
    seen: list[str] = []

    def guard(url: str) -> list[str]:
        seen.append(url)
        return []

    with pytest.raises(PhotoRefused, match="redirects"), PhotoHost(config()).open(f"{sim.url}/photos/5000/a.jpg",
                                                                                    guard):
        pass
    assert len(seen) == MAX_REDIRECTS + 1


def test_a_guard_refusal_stops_before_any_connection(sim: SimServer) -> None:
    def guard(url: str) -> list[str]:
        raise PhotoRefused("not on the list")

    with pytest.raises(PhotoRefused, match="not on the list"), PhotoHost(config()).open(
            f"{sim.url}/photos/5000/medium.jpg", guard):
        pass
    assert sim.requests == []
