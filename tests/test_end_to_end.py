"""Issue 2's acceptance: a dry-run cycle over a simulated community, end to end through the CLI.

The model bundle is 'designed': its final layer is solved so that each prototype photo gets a
probability vector chosen here, so the right decision for every observation is known in advance.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw
from sqlalchemy import select

from bot.cli import main
from bot.domain import Label
from bot.sim.model import SimObservation, SimTaxon, SimUser, World
from bot.sim.server import SimServer
from bot.store import Store
from bot.store.models import DecisionRow, PhotoRow, PredictionRow
from tests.support.designed_model import build_designed_bundle, plant_world, spread_target, taxonomy_labels
from tests.support.simconfig import write_sim_config

# Plantae > Rosaceae (Rosa: 401, 402; Rubus: 403), Asteraceae (Bellis: 404, 405), Fagaceae (Quercus: 406),
# Pinaceae (Pinus: 407), Sapindaceae (Acer: 408)
FAMILIES = {201: "Rosaceae", 202: "Asteraceae", 203: "Fagaceae", 204: "Pinaceae", 205: "Sapindaceae"}
GENERA = {301: ("Rosa", 201), 302: ("Rubus", 201), 303: ("Bellis", 202), 304: ("Quercus", 203),
          305: ("Pinus", 204), 306: ("Acer", 205)}
SPECIES = {401: ("Rosa canina", 301), 402: ("Rosa gallica", 301), 403: ("Rubus idaeus", 302),
           404: ("Bellis perennis", 303), 405: ("Bellis annua", 303), 406: ("Quercus robur", 304),
           407: ("Pinus pinea", 305), 408: ("Acer campestre", 306)}
SPECIES_IDS = list(SPECIES)


def labels() -> list[Label]:
    return taxonomy_labels(SPECIES, GENERA, FAMILIES)


def target(weights: dict[int, float]) -> np.ndarray:
    return spread_target(weights, SPECIES_IDS)


@dataclass
class Proto:
    key: str
    probs: np.ndarray
    expect: tuple[str, int | None]  # decision kind and taxon id


PROTOS = [
    *[Proto(f"sp{sid}", target({sid: 0.9}), ("species", sid)) for sid in SPECIES_IDS],
    Proto("genus", target({401: 0.22, 402: 0.22, 403: 0.01}), ("genus", 301)),  # Rosa 0.44, no species >= .3
    Proto("family", target({401: 0.12, 402: 0.12, 403: 0.25}), ("family", 201)),  # Rosa .24, Rubus .25, fam .49
    # every species, genus and family below 0.3 (families: .27, .24, .17, .16, .16)
    Proto("abstain", target({401: .09, 402: .09, 403: .09, 404: .12, 405: .12, 406: .17, 407: .16, 408: .16}),
          ("abstain", None)),
]


def proto_jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (96, 72), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.randrange(96), rng.randrange(72)
        draw.ellipse((x, y, x + rng.randrange(8, 40), y + rng.randrange(8, 30)),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


# Enough observations for several listing pages of PER_PAGE (the cursor must carry over pages), few
# enough that the cycle's inference stays a few seconds.
N_OBSERVATIONS, PER_PAGE = 94, 30


def build_world(protos_bytes: list[bytes]) -> tuple[World, dict[int, tuple[str, int | None]], dict[str, int]]:
    world = plant_world(SPECIES, GENERA, FAMILIES)
    world.taxa[1] = SimTaxon(1, "Animalia", "kingdom", None, "Animalia")
    world.taxa[47158] = SimTaxon(47158, "Insecta", "class", 1, "Insecta")
    world.users[1] = SimUser(1, "observer")
    rng = random.Random(7)
    photo_id = 5000
    expected: dict[int, tuple[str, int | None]] = {}
    special: dict[str, int] = {}
    for i in range(N_OBSERVATIONS):
        oid = 1000 + i
        if i % 47 == 5:  # two non-plants: never listed by a plant query
            world.photos[photo_id] = protos_bytes[0]
            world.observations[oid] = SimObservation(oid, 1, [photo_id], taxon_id=47158)
            photo_id += 1
            continue
        k = rng.randrange(len(PROTOS))
        ids = []
        for _ in range(rng.randint(1, 4)):
            world.photos[photo_id] = protos_bytes[k]
            ids.append(photo_id)
            photo_id += 1
        world.observations[oid] = SimObservation(oid, 1, ids, taxon_id=47126)
        expected[oid] = PROTOS[k].expect
    # Two photos of different species: the average of the two vectors.
    mixed = 1000 + N_OBSERVATIONS
    world.photos[photo_id], world.photos[photo_id + 1] = protos_bytes[0], protos_bytes[3]
    world.observations[mixed] = SimObservation(mixed, 1, [photo_id, photo_id + 1], taxon_id=47126)
    special["mixed"] = mixed
    # One corrupt photo beside a good one: classified from the good one.
    corrupt = mixed + 1
    world.photos[photo_id + 2] = b"\xff\xd8\xff\xe0garbage" * 50
    world.photos[photo_id + 3] = protos_bytes[1]
    world.observations[corrupt] = SimObservation(corrupt, 1, [photo_id + 2, photo_id + 3], taxon_id=47126)
    expected[corrupt] = PROTOS[1].expect
    special["corrupt"] = corrupt
    # All photos failing: skipped with that reason.
    broken = mixed + 2
    world.photos[photo_id + 4] = b"not an image at all"
    world.photos[photo_id + 5] = protos_bytes[2][: len(protos_bytes[2]) // 3]
    world.observations[broken] = SimObservation(broken, 1, [photo_id + 4, photo_id + 5], taxon_id=47126)
    expected[broken] = ("skip", None)
    special["broken"] = broken
    return world, expected, special


@pytest.fixture(scope="module", params=["inat-v1", "legacy"])
def community(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    flavor = request.param
    tmp = tmp_path_factory.mktemp(f"e2e-{flavor}")
    protos_bytes = [proto_jpeg(s) for s in range(len(PROTOS))]
    bundle = build_designed_bundle(tmp / "bundle", labels(), protos_bytes, np.stack([p.probs for p in PROTOS]))
    world, expected, special = build_world(protos_bytes)
    with SimServer(world) as sim:
        # dtype float32: stored probabilities are checked to 1e-4 below; bfloat16 moves them by ~1e-3
        config = write_sim_config(tmp / "config.toml", api_url=sim.api_url, site_url=sim.url, state=tmp, sections={
            "platform": {"flavor": flavor, "requests_per_second": 50.0, "requests_per_minute": 3000,
                         "per_page": PER_PAGE},
            "model": {"path": bundle.path, "batch_size": 32, "dtype": "float32"}, "decision": {"cutoff": 0.30},
            "posting": {"mode": "review"}})
        yield sim, config, expected, special, tmp, flavor


def run_once(config: Path) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["--config", str(config), "once", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dry_run_cycle_decides_every_plant_observation_as_expected(community) -> None:  # type: ignore[no-untyped-def]
    sim, config, expected, special, tmp, flavor = community
    summary = run_once(config)
    plants = len(expected) + 1  # + the mixed one
    assert summary["decided"] == plants
    if flavor == "inat-v1":
        assert summary["seen"] == plants
        listing = [r for r in sim.requests if r.path == "/v1/observations"]
        assert all(r.query.get("iconic_taxa") == ["Plantae"] and r.query.get("order_by") == ["id"] for r in listing)
    else:
        listing = [r for r in sim.requests if r.path == "/observations.json"]
        assert all(r.query.get("iconic_taxa[]") == ["Plantae"] and r.query.get("has[]") == ["photos"]
                   for r in listing)
    assert len(listing) >= 3  # some 95 plant observations over pages of 30
    assert sim.writes == []

    store = Store(tmp / "plantbot.sqlite3")
    with store.session() as s:
        rows = {d.observation_id: d for d in s.scalars(select(DecisionRow))}
        assert set(rows) == set(expected) | {special["mixed"]}
        wrong = {oid: (rows[oid].kind, rows[oid].taxon_id, exp) for oid, exp in expected.items()
                 if (rows[oid].kind, rows[oid].taxon_id) != exp}
        assert not wrong
        kinds = Counter(d.kind for d in rows.values())
        assert {"species", "genus", "family", "abstain", "skip"} <= set(kinds)
        assert all(d.dry_run and d.status == "recorded" for d in rows.values())
        assert rows[special["broken"]].reasons[0] == "no loadable photo"

        corrupt_photos = s.scalars(select(PhotoRow).where(PhotoRow.observation_id == special["corrupt"])).all()
        assert sorted(p.status for p in corrupt_photos)[0] != "ok" and rows[special["corrupt"]].n_photos == 1

        mixed = rows[special["mixed"]]
        stored = {p.name: p.prob for p in s.scalars(select(PredictionRow).where(
            PredictionRow.decision_id == mixed.id, PredictionRow.rank == "species"))}
        mean = (PROTOS[0].probs + PROTOS[3].probs) / 2
        for i, label in enumerate(labels()):
            if label.name in stored:
                assert stored[label.name] == pytest.approx(mean[i], abs=1e-4)
        assert mixed.n_photos == 2
    store.close()


def test_second_cycle_finds_nothing_new(community) -> None:  # type: ignore[no-untyped-def]
    sim, config, expected, special, tmp, flavor = community
    before = len(sim.requests)
    summary = run_once(config)
    assert summary["seen"] == 0 and summary["decided"] == 0
    assert sim.writes == []
    assert len(sim.requests) - before <= 2  # one listing request past the cursor
