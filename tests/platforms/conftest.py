"""A small simulator world and configs pointing at it (rate limits high except where a test checks them)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.config import Config, Secrets
from bot.sim.model import SimIdentification, SimObservation, SimTaxon, SimUser, World
from bot.sim.server import SimServer

PLANTAE, GENUS, SPECIES_A, SPECIES_B = 47126, 50000, 100001, 100002
ANIMALIA, INSECT = 1, 200001
BOT_LOGIN, BOT_PASSWORD = "plantbot", "s3cret-pw"


def jpeg(size: tuple[int, int] = (32, 24), color: tuple[int, int, int] = (40, 160, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def make_world(n_plants: int = 10, n_insects: int = 2, first_id: int = 1000) -> World:
    w = World()
    w.taxa[PLANTAE] = SimTaxon(PLANTAE, "Plantae", "kingdom", None, "Plantae", 70)
    w.taxa[GENUS] = SimTaxon(GENUS, "Fakea", "genus", PLANTAE, "Plantae", 20)
    w.taxa[SPECIES_A] = SimTaxon(SPECIES_A, "Fakea alba", "species", GENUS, "Plantae", 10)
    w.taxa[SPECIES_B] = SimTaxon(SPECIES_B, "Fakea nigra", "species", GENUS, "Plantae", 10)
    w.taxa[ANIMALIA] = SimTaxon(ANIMALIA, "Animalia", "kingdom", None, "Animalia", 70)
    w.taxa[INSECT] = SimTaxon(INSECT, "Bugus bugus", "species", ANIMALIA, "Insecta", 10)
    w.users[1] = SimUser(1, "alice", "alice-pw")
    w.users[2] = SimUser(2, BOT_LOGIN, BOT_PASSWORD)
    w.users[3] = SimUser(3, "moderator", "mod-pw")
    data = jpeg()
    pid = 5000
    for i in range(n_plants + n_insects):
        oid = first_id + i
        plant = i < n_plants
        photo_ids = [pid + k for k in range(1 + i % 3)] if plant else [pid]
        for p in photo_ids:
            w.photos[p] = data
        pid += len(photo_ids)
        taxon = (SPECIES_A if i % 2 else GENUS) if plant else INSECT
        w.observations[oid] = SimObservation(
            id=oid, user_id=1, photo_ids=photo_ids, taxon_id=taxon, quality_grade="needs_id",
            identifications=[SimIdentification(id=90000 + i, user_id=1, taxon_id=taxon)],
            place_ids=[7] if i % 2 else [8], project_ids=[3] if i % 4 == 1 else [])
    return w


def make_config(tmp_path: Path, sim: SimServer | None = None, **platform: object) -> Config:
    cfg = Config()
    p = cfg.platform
    if sim is not None:
        p.api_url, p.site_url = sim.api_url, sim.url
    p.photo_hosts = ["127.0.0.1"]
    p.ratelimit_path = str(tmp_path / "ratelimit.sqlite3")
    p.requests_per_second, p.requests_per_minute, p.requests_per_day = 1000.0, 100000, 1000000
    p.max_retries, p.timeout_seconds = 2, 5.0
    p.contact = "ops@example.org"
    for key, value in platform.items():
        setattr(p, key, value)
    return cfg


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    started: list[SimServer] = []

    def start(world: World | None = None, **kwargs: object) -> SimServer:
        server = SimServer(world or make_world(), **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., SimServer]) -> SimServer:
    return sim_factory()


def grant_secrets() -> Secrets:
    return Secrets(app_id="app", app_secret="app-secret", username=BOT_LOGIN, password=BOT_PASSWORD)
