"""Photo latency and bandwidth: the simulator can play a distant, slow photo CDN (for the cycle benchmark)."""

from __future__ import annotations

import time

import requests

from bot.sim.model import World
from bot.sim.server import SimServer


def test_photos_wait_for_the_latency_and_trickle_at_the_bandwidth(world: World) -> None:
    photo_id = next(iter(world.photos))
    with SimServer(world) as plain:
        url = f"{plain.url}/photos/{photo_id}/original.jpg"
        expected = requests.get(url, timeout=10).content
    size = len(expected)
    with SimServer(world, photo_latency=0.3, photo_bandwidth=size / 0.5) as slow:
        started = time.monotonic()
        got = requests.get(f"{slow.url}/photos/{photo_id}/original.jpg", timeout=10)
        took = time.monotonic() - started
        assert got.status_code == 200 and got.content == expected  # paced, not cut
        assert took >= 0.3 + 0.5 * 0.9  # latency, then the body at the bandwidth
