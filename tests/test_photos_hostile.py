"""Photo URLs from a hostile platform: the port counts, size-limit reasons read as text, and the connection goes
to the address that was checked, never to a second DNS answer (DNS rebinding)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bot.errors import PhotoRefused
from bot.photos import check_url, download_photos
from bot.platforms.photo_host import PinnedAdapter
from bot.sim.server import SimServer
from tests.platforms.conftest import make_world
from tests.test_photos import Files, config, no_dns, noisy_jpeg, obs


def public(host: str) -> list[str]:
    return {"static.inaturalist.org": ["93.184.216.34"]}[host]


def test_the_allowed_host_check_counts_the_port() -> None:
    hosts = ["static.inaturalist.org"]
    assert check_url("https://static.inaturalist.org/photos/1/medium.jpg", hosts, public) == ["93.184.216.34"]
    assert check_url("https://static.inaturalist.org:443/photos/1/medium.jpg", hosts, public)
    for url in ("https://static.inaturalist.org:8443/photos/1/medium.jpg",
                "https://static.inaturalist.org:22/photos/1/medium.jpg"):
        with pytest.raises(PhotoRefused, match="port"):
            check_url(url, hosts, public)
    assert check_url("https://static.inaturalist.org:8443/x.jpg", ["static.inaturalist.org:8443"], public)
    with pytest.raises(PhotoRefused):
        check_url("https://user:pw@static.inaturalist.org/x.jpg", hosts, public)


def test_a_size_limit_reason_is_a_sentence_not_a_tuple() -> None:
    files = Files()
    big = noisy_jpeg((400, 300))
    files.files["/photos/1/medium.jpg"] = (big, False)
    files.files["/photos/2/medium.jpg"] = (big, True)
    results = download_photos([obs(1, f"{files.url}/photos/1/medium.jpg", f"{files.url}/photos/2/medium.jpg")],
                              config(max_bytes=len(big) // 3), resolver=no_dns)[1]
    files.close()
    for r in results:
        assert r.status == "too_large" and r.error is not None
        assert not r.error.startswith("(") and "over the limit" in r.error


@pytest.fixture
def two_sims() -> Iterator[tuple[SimServer, SimServer]]:
    world = make_world()
    good = SimServer(world).start()
    rebound = SimServer(world, host="127.0.0.2", port=good.port).start()
    yield good, rebound
    good.stop()
    rebound.stop()


def test_the_connection_goes_to_the_pinned_address_not_a_new_dns_answer(two_sims: tuple[SimServer, SimServer],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    good, rebound = two_sims
    real = socket.getaddrinfo

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:  # the second answer points elsewhere
        return real("127.0.0.2" if host == "photos.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    photo_id = min(good.world.photos)
    url = f"http://photos.example:{good.port}/photos/{photo_id}/square.jpg"
    session = requests.Session()
    adapter = PinnedAdapter(max_retries=0)
    session.mount("http://", adapter)
    adapter.pin("photos.example", "127.0.0.1")  # what the SSRF guard checked
    resp = session.get(url, timeout=5)
    assert resp.status_code == 200 and resp.content
    assert rebound.requests == []
    assert good.requests[-1].headers["host"] == f"photos.example:{good.port}"
    unpinned = requests.Session().get(url, timeout=5)  # without the pin, the rebound address is used
    assert unpinned.status_code == 200 and len(rebound.requests) == 1
