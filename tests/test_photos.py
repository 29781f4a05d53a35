"""Safe photo download: size rewrite, SSRF guard, byte and pixel limits, decoding, media budget."""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from bot.config import Config
from bot.domain import Observation, Photo, User
from bot.photos import MediaBudget, download_photos, rewrite_size
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from bot.store.db import Store
from bot.store.media import StoreMediaLedger
from tests.platforms.conftest import jpeg, make_world

USER = User(1, "alice")


def noisy_jpeg(size: tuple[int, int] = (160, 120), seed: int = 0) -> bytes:
    rng = random.Random(seed)
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def obs(oid: int, *urls: str) -> Observation:
    return Observation(id=oid, user=USER, photos=tuple(Photo(id=oid * 10 + i, url=u, position=i)
                                                      for i, u in enumerate(urls)))


def config(**photos: object) -> Config:
    cfg = Config()
    cfg.platform.photo_hosts = ["127.0.0.1"]
    cfg.photos.parallel = 4
    cfg.photos.timeout_seconds = 5.0
    for key, value in photos.items():
        setattr(cfg.photos, key, value)
    return cfg


def no_dns(host: str) -> list[str]:
    raise AssertionError(f"tests never resolve real names ({host})")


class Files:
    """A tiny loopback server with chosen bytes per path; can stream without Content-Length."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.files: dict[str, tuple[bytes, bool]] = {}
        self.seen: list[str] = []
        self.drip = 0.0  # > 0: send 100 bytes at a time with this pause between
        files = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                files.seen.append(self.path)
                body, declare = files.files.get(self.path.split("?")[0], (b"", True))
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "image/jpeg")
                if declare:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                step = 100 if files.drip else 8192
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    if files.drip:
                        self.wfile.flush()
                        time.sleep(files.drip)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the client hanging up mid-file (byte limit) is expected here

        self.httpd = Server((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def files() -> Iterator[Files]:
    f = Files()
    yield f
    f.close()


@pytest.fixture
def sims() -> Iterator[Callable[..., SimServer]]:
    started: list[SimServer] = []

    def start(**kw: object) -> SimServer:
        s = SimServer(make_world(n_plants=4), **kw).start()  # type: ignore[arg-type]
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.mark.parametrize(("url", "expected"), [
    ("https://static.inaturalist.org/photos/92152429/square.jpg?1598551272",
     "https://static.inaturalist.org/photos/92152429/medium.jpg?1598551272"),
    ("https://inaturalist-open-data.s3.amazonaws.com/photos/1/large.jpeg",
     "https://inaturalist-open-data.s3.amazonaws.com/photos/1/medium.jpeg"),
    ("https://static.inaturalist.org/photos/24355313/medium.jpeg?1536150659",
     "https://static.inaturalist.org/photos/24355313/medium.jpeg?1536150659"),
    ("https://example.org/attachments/local_photos/files/1/square/x.jpg",
     "https://example.org/attachments/local_photos/files/1/square/x.jpg"),
    ("https://static.inaturalist.org/photos/1/weird.jpg", "https://static.inaturalist.org/photos/1/weird.jpg"),
    ("https://static.inaturalist.org/photos/abc/square.jpg", "https://static.inaturalist.org/photos/abc/square.jpg"),
])
def test_rewrite_size_only_on_known_shapes(url: str, expected: str) -> None:
    assert rewrite_size(url, "medium") == expected


def test_every_photo_in_position_order_at_the_configured_size(sims: Callable[..., SimServer]) -> None:
    sim = sims()
    base = f"{sim.url}/photos"
    observations = [obs(1, f"{base}/5000/square.jpg?1", f"{base}/5001/square.jpg?1"), obs(2, f"{base}/5002/thumb.jpg")]
    out = download_photos(observations, config(size="small"), resolver=no_dns)
    assert [[r.photo.id for r in out[o.id]] for o in observations] == [[10, 11], [20]]
    assert all(r.status == "ok" and r.image is not None and r.image.mode == "RGB" for rs in out.values() for r in rs)
    assert sorted(r.path for r in sim.requests) == ["/photos/5000/small.jpg", "/photos/5001/small.jpg",
                                                    "/photos/5002/small.jpg"]
    assert out[1][0].url == f"{base}/5000/small.jpg?1" and out[1][0].nbytes == len(sim.world.photos[5000])
    assert sim.requests[0].headers["user-agent"].startswith("PlantBot/")


def test_foreign_hosts_never_see_a_request(sims: Callable[..., SimServer]) -> None:
    foreign = sims(host="127.0.0.2")
    rule = FaultRule("GET /photos/5001/*", "redirect", target=foreign.url)
    sim = sims(faults=FaultPlan([rule]))
    observations = [obs(1, f"{foreign.url}/photos/5000/square.jpg",  # direct URL on a foreign host
                        f"{sim.url}/photos/5001/square.jpg",  # redirected to the foreign host
                        f"{sim.url}/photos/5002/square.jpg")]  # fine
    results = download_photos(observations, config(), resolver=no_dns)[1]
    assert [r.status for r in results] == ["refused", "refused", "ok"]
    assert "127.0.0.2 is not an allowed photo host" in (results[0].error or "")
    assert "127.0.0.2" in (results[1].error or "")
    assert foreign.requests == []
    assert [r.status for r in sim.requests if r.path.startswith("/photos/5001/")] == [302]


def test_schemes_and_private_addresses_refused_before_connecting() -> None:
    cfg = config()
    cfg.platform.photo_hosts = ["static.inaturalist.org", "127.0.0.1"]
    answers = {"static.inaturalist.org": ["10.1.2.3"]}
    asked: list[str] = []

    def resolver(host: str) -> list[str]:
        asked.append(host)
        return answers[host]

    o = obs(1, "http://static.inaturalist.org/photos/1/square.jpg",  # plain http, not loopback
            "https://evil.example/photos/1/square.jpg",  # not an allowed host
            "https://static.inaturalist.org/photos/2/square.jpg",  # resolves to a private address
            "ftp://127.0.0.1/photos/3/square.jpg")
    results = download_photos([o], cfg, resolver=resolver)[1]
    assert [r.status for r in results] == ["refused"] * 4
    assert "https only" in (results[0].error or "") and "not an allowed" in (results[1].error or "")
    assert "non-public address (10.1.2.3)" in (results[2].error or "")
    answers["static.inaturalist.org"] = ["93.184.216.34", "169.254.169.254"]  # one bad answer is enough
    assert download_photos([obs(2, o.photos[2].url)], cfg, resolver=resolver)[2][0].status == "refused"
    assert asked == ["static.inaturalist.org", "static.inaturalist.org"]


def test_byte_limit_while_streaming_and_declared(files: Files) -> None:
    big = noisy_jpeg((400, 300))
    files.files["/photos/1/medium.jpg"] = (big, False)  # no Content-Length: counted while streaming
    files.files["/photos/2/medium.jpg"] = (big, True)
    limit = len(big) // 3
    results = download_photos([obs(1, f"{files.url}/photos/1/medium.jpg", f"{files.url}/photos/2/medium.jpg")],
                              config(max_bytes=limit), resolver=no_dns)[1]
    assert [r.status for r in results] == ["too_large", "too_large"]
    assert limit < results[0].nbytes <= limit + 64 * 1024 and results[1].nbytes == 0


def test_bad_content_is_recorded_by_kind(files: Files) -> None:
    good = noisy_jpeg()
    bomb = io.BytesIO()
    Image.new("L", (3000, 3000)).save(bomb, "PNG")
    files.files.update({
        "/photos/1/medium.jpg": (good[: len(good) // 2], True),
        "/photos/2/medium.jpg": (random.Random(3).randbytes(2000), True),
        "/photos/3/medium.jpg": (bomb.getvalue(), True),
        "/photos/4/medium.jpg": (b"<html>not a photo</html>", True),
        "/photos/5/medium.jpg": (good, True),
    })
    urls = [f"{files.url}/photos/{i}/medium.jpg" for i in range(1, 7)]  # 6 does not exist
    results = download_photos([obs(1, *urls)], config(max_pixels=1_000_000), resolver=no_dns)[1]
    assert [r.status for r in results] == ["truncated", "not_an_image", "too_large", "not_an_image", "ok", "failed"]
    assert "HTTP 404" in (results[5].error or "") and results[4].image is not None
    assert all(r.image is None for r in results if r.status != "ok")


def test_media_budget_persists_across_restarts(files: Files, tmp_path: Path) -> None:
    data = jpeg()
    for i in range(4):
        files.files[f"/photos/{i}/medium.jpg"] = (data, True)
    urls = [f"{files.url}/photos/{i}/medium.jpg" for i in range(4)]
    now = [datetime(2026, 5, 1, 10, 5, tzinfo=UTC).timestamp()]
    db = tmp_path / "plantbot.sqlite3"
    cfg = config(parallel=1, media_bytes_per_hour=len(data) * 2, media_bytes_per_day=len(data) * 3)

    store = Store(db)
    budget = MediaBudget.from_config(cfg, StoreMediaLedger(store), clock=lambda: now[0])
    first = download_photos([obs(1, *urls)], cfg, resolver=no_dns, media_budget=budget)[1]
    assert [r.status for r in first] == ["ok", "ok", "budget", "budget"]
    assert "media budget for this hour spent" in (first[2].error or "")
    store.close()

    restarted = Store(db)  # a new process: the bytes already downloaded still count
    budget = MediaBudget.from_config(cfg, StoreMediaLedger(restarted), clock=lambda: now[0])
    assert budget.status()["bytes_this_hour"] == 2 * len(data)
    assert download_photos([obs(2, urls[0])], cfg, resolver=no_dns, media_budget=budget)[2][0].status == "budget"
    now[0] += 3600  # the next hour: one more photo fits the day's cap, then the day is spent
    again = download_photos([obs(3, *urls[:2])], cfg, resolver=no_dns, media_budget=budget)[3]
    assert [r.status for r in again] == ["ok", "budget"]
    assert "24 h" in (again[1].error or "")
    assert len(files.seen) == 3  # photos over the budget were never requested
    restarted.close()


def test_a_url_that_does_not_parse_is_refused_not_raised() -> None:
    results = download_photos([obs(9, "https://[static.inaturalist.org/photos/1/square.jpg")], config(),
                              resolver=no_dns)[9]
    assert [r.status for r in results] == ["refused"]
    assert "URL" in (results[0].error or "")


def test_a_server_dripping_bytes_is_cut_off_at_the_time_limit(files: Files) -> None:
    files.files["/photos/7/medium.jpg"] = (b"\xff" * 8000, True)
    files.drip = 0.1  # 8 s for the whole file
    started = time.monotonic()
    [result] = download_photos([obs(7, files.url + "/photos/7/square.jpg")], config(timeout_seconds=1.0),
                               resolver=no_dns)[7]
    assert result.status == "failed" and "longer than 1 s" in (result.error or "")
    assert time.monotonic() - started < 4.0  # cut at the limit, not when the server is done
