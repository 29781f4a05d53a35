"""The synthetic plant world: taxonomy shape, observations, photos, determinism, look-alike genera."""

from __future__ import annotations

import csv
import io
import itertools
import random

import numpy as np
import pytest
from PIL import Image

from bot.sim.model import World
from bot.sim.world import (
    FIRST_OBSERVATION_ID,
    PLANTAE_ID,
    SpeciesInfo,
    WorldSpec,
    labels_for,
    make_taxonomy,
    make_world,
    render_photo,
    render_photos,
    world_truth,
    write_image_folder,
)

SMALL = WorldSpec(families=2, genera_per_family=2, species_per_genus=2, observations=30,
                  photo_size=(80, 60), non_plant_fraction=0.2, seed=3)


def _image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    img.load()
    return img


def test_taxonomy_has_the_real_shape() -> None:
    world, species = make_taxonomy(WorldSpec(families=3, genera_per_family=2, species_per_genus=4))
    plantae = world.taxa[PLANTAE_ID]
    assert (plantae.name, plantae.rank, plantae.iconic_taxon_name, plantae.parent_id) == (
        "Plantae", "kingdom", "Plantae", None)
    assert len(species) == 3 * 2 * 4
    assert len({s.name for s in species}) == len(species)
    for sp in species:
        chain = [world.taxa[t] for t in world.ancestor_ids(sp.taxon_id)]
        assert [t.rank for t in chain] == ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
        assert [t.name for t in chain[:3]] == ["Plantae", "Tracheophyta", "Magnoliopsida"]
        assert chain[4].id == sp.family_taxon_id and chain[4].name == sp.family
        assert chain[5].id == sp.genus_taxon_id and chain[5].name == sp.genus
        assert sp.taxon_id >= 100000 and sp.name.startswith(sp.genus + " ")
        assert chain[4].name.endswith("aceae") and chain[3].name.endswith("ales")
        assert all(t.iconic_taxon_name == "Plantae" for t in chain)
    assert len({s.family_taxon_id for s in species}) == 3 and len({s.genus_taxon_id for s in species}) == 6
    insects = [t for t in world.taxa.values() if t.iconic_taxon_name == "Insecta" and t.rank == "species"]
    assert insects
    for t in insects:
        assert [world.taxa[a].name for a in world.ancestor_ids(t.id)][:3] == ["Animalia", "Arthropoda", "Insecta"]
    assert world.users and not world.observations


def test_make_world_observations_photos_and_truth() -> None:
    world, species = make_world(SMALL)
    ids = sorted(world.observations)
    assert ids == list(range(FIRST_OBSERVATION_ID, FIRST_OBSERVATION_ID + SMALL.observations))
    all_photo_ids = [p for o in world.observations.values() for p in o.photo_ids]
    assert len(all_photo_ids) == len(set(all_photo_ids)) == len(world.photos)
    by_id = {s.taxon_id: s for s in species}
    truth = world_truth(world)
    kinds = set()
    for obs in world.observations.values():
        assert 1 <= len(obs.photo_ids) <= 4
        assert _image(world.photos[obs.photo_ids[0]]).size == (80, 60)
        true = truth[obs.id]
        if true in by_id:  # a plant: its public taxon is absent or the truth or an ancestor of it
            assert obs.taxon_id is None or obs.taxon_id in world.ancestor_ids(true)
            if obs.quality_grade == "research":
                assert obs.taxon_id == obs.community_taxon_id == true
            kinds.add("plant")
        else:
            assert world.iconic_taxon_name(true) == "Insecta" and obs.taxon_id == true
            kinds.add("insect")
        assert obs.user_id in world.users
    assert kinds == {"plant", "insect"}
    grades = {o.quality_grade for o in world.observations.values()}
    assert "research" in grades and "needs_id" in grades


def test_world_is_deterministic_per_seed(tmp_path) -> None:
    a, _ = make_world(SMALL)
    b, _ = make_world(SMALL)
    assert a.photos == b.photos and a.observations == b.observations
    c, _ = make_world(WorldSpec(**{**SMALL.__dict__, "seed": 4}))
    assert c.photos != a.photos
    a.save(tmp_path)
    loaded = World.load(tmp_path)
    assert world_truth(loaded) == world_truth(a) and loaded.photos == a.photos


@pytest.mark.parametrize("tag", ["habit", "flower", "leaf"])
def test_render_photo_is_a_jpeg_of_the_requested_size(tag: str) -> None:
    _, species = make_taxonomy(WorldSpec())
    data = render_photo(species[0], random.Random(0), (120, 90), tag)
    img = _image(data)
    assert img.size == (120, 90) and img.mode == "RGB"
    assert np.asarray(img).std() > 10  # a picture, not a flat colour
    assert render_photo(species[0], random.Random(0), (120, 90), tag) == data


def test_render_photo_rejects_unknown_tags() -> None:
    _, species = make_taxonomy(WorldSpec())
    with pytest.raises(ValueError, match="unknown photo tag"):
        render_photo(species[0], random.Random(0), (60, 40), "bark")


def test_render_photos_are_varied_and_sized() -> None:
    photos = render_photos(6, size=160, seed=1)
    assert len(photos) == 6 and len(set(photos)) == 6
    assert {_image(p).size for p in photos} == {(160, 120)}


def _hue_profile(data: bytes) -> np.ndarray:
    """Histogram of the hues of bright, saturated pixels: flowers and leaves, not sky or soil."""
    hsv = np.asarray(Image.open(io.BytesIO(data)).convert("HSV")).reshape(-1, 3).astype(float)
    weights = (hsv[:, 1] > 120) * (hsv[:, 2] > 120)
    hist, _ = np.histogram(hsv[:, 0], bins=24, range=(0, 256), weights=weights)
    return hist / max(1.0, hist.sum())


def test_species_of_a_genus_look_more_alike_than_across_families() -> None:
    _, species = make_taxonomy(WorldSpec(families=4, genera_per_family=2, species_per_genus=3))
    rng = random.Random(1)
    centre = {s.taxon_id: np.mean([_hue_profile(render_photo(s, rng, (96, 72), tag))
                                   for tag in ("habit", "flower", "leaf") * 3], axis=0) for s in species}
    same_genus, same_family, other_family = [], [], []
    for a, b in itertools.combinations(species, 2):
        d = float(np.linalg.norm(centre[a.taxon_id] - centre[b.taxon_id]))
        if a.genus_taxon_id == b.genus_taxon_id:
            same_genus.append(d)
        elif a.family_taxon_id == b.family_taxon_id:
            same_family.append(d)
        else:
            other_family.append(d)
    assert np.mean(same_genus) < np.mean(same_family) < np.mean(other_family)
    assert min(same_genus) > 0  # still distinguishable species


def test_write_image_folder_and_labels(tmp_path) -> None:
    _, species = make_taxonomy(WorldSpec(families=1, genera_per_family=2, species_per_genus=2))
    root = write_image_folder(species, tmp_path / "photos", per_species=3, seed=0, size=(64, 48))
    for sp in species:
        files = sorted((root / sp.name).glob("*.jpg"))
        assert len(files) == 3 and _image(files[0].read_bytes()).size == (64, 48)
    with open(root / "taxonomy.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["name"], r["genus"], r["family"], int(r["taxon_id"])) for r in rows] == [
        (s.name, s.genus, s.family, s.taxon_id) for s in species]
    with open(root / "tags.csv", newline="") as fh:
        tags = list(csv.DictReader(fh))
    assert len(tags) == 12 and {t["tag"] for t in tags} == {"habit", "flower", "leaf"}
    assert all((root / t["path"]).is_file() for t in tags)
    labels = labels_for(species)
    assert [lab.index for lab in labels] == list(range(len(species)))
    assert [(lab.taxon_id, lab.name, lab.genus_taxon_id, lab.family) for lab in labels] == [
        (s.taxon_id, s.name, s.genus_taxon_id, s.family) for s in species]
    assert isinstance(species[0], SpeciesInfo)


def test_simulator_never_serves_the_truth() -> None:
    server_mod = pytest.importorskip("bot.sim.server")
    requests = pytest.importorskip("requests")
    world, _ = make_world(SMALL)
    with server_mod.SimServer(world) as srv:
        body = requests.get(f"{srv.api_url}/observations", params={"per_page": 200}, timeout=10).text
    assert str(FIRST_OBSERVATION_ID) in body and "true_taxon_id" not in body
