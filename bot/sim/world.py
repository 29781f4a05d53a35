"""A synthetic plant world: a real taxonomy shape, plant-like photos and observations of them.

This is a *test world* (used by the tests, `plantbot bench` and the demo), not botany: the names are
made up, Latin-looking, and follow the real conventions (families end in -aceae, orders in -ales).

Shape: Plantae (47126) > Tracheophyta > Magnoliopsida > orders > families > genera > species
(species ids >= 100000), plus Animalia > Arthropoda > Insecta > a few insect species for the
non-plant observations.  Ids are structured so the drawing (bot.sim.plants) can derive each plant's
look from its ids alone: species of one genus share the genus's shape and differ only in colour and
a small detail, families share a growth form and a colour range.

Geography (`WorldSpec.places` > 0): the region PLACE_ID holds sub-places (ids PLACE_ID+1 …), each
species grows in only some of them (`SpeciesInfo.places`, drawn so look-alikes of one genus are spread
over different places), and each plant observation lies in the region and one sub-place where its
species grows.  This is what a regional flora can be measured on.

Observations (ids from 1000 up) keep their true species in `SimObservation.true_taxon_id`, which the
simulator never serves: most carry no taxon or a coarser one, research-grade ones carry the species.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain import Label
from bot.sim import plants
from bot.sim.model import SimIdentification, SimObservation, SimPlace, SimTaxon, SimUser, World

PLANTAE_ID = 47126
TRACHEOPHYTA_ID = 211194
MAGNOLIOPSIDA_ID = 47124
ANIMALIA_ID = 1
ARTHROPODA_ID = 47120
INSECTA_ID = 47158
INSECT_SPECIES = ((47219, "Apis mellifera"), (48484, "Coccinella septempunctata"), (49133, "Vanessa atalanta"))
ORDER_BASE, FAMILY_BASE, GENUS_BASE, SPECIES_BASE = 50000, 60000, 70000, 100000
FIRST_OBSERVATION_ID = 1000
FIRST_PHOTO_ID = 1
PLACE_ID = 1  # every observation lies in this place (the region holding the sub-places, if any)
PROJECT_ID = 1  # every other observation belongs to this project
BOT_USER_ID, MODERATOR_USER_ID = 1, 2
RANK_LEVELS = {"kingdom": 70.0, "phylum": 60.0, "class": 50.0, "order": 40.0, "family": 30.0,
               "genus": 20.0, "species": 10.0}

_STEMS = ("Bel", "Cor", "Dav", "Ery", "Fel", "Gal", "Hel", "Ilv", "Jov", "Kel", "Lun", "Mav", "Nep", "Orv",
          "Pal", "Quer", "Rav", "Sel", "Tav", "Ulv", "Vel", "Xer", "Yol", "Zev")
_LINKS = ("a", "e", "i", "o", "u")
_ENDINGS = ("nthus", "ria", "lia", "mum", "sia", "nella", "phila", "dium", "rum", "ssa", "lis", "nia")
EPITHETS = ("alba", "rubra", "lutea", "caerulea", "vulgaris", "montana", "minor", "major", "officinalis",
            "sylvestris", "aquatica", "arvensis", "pratensis", "hirsuta", "glabra", "tenuis", "elegans",
            "gracilis", "nana", "alpina", "maritima", "palustris", "repens", "scandens", "spinosa",
            "tomentosa", "variegata", "virens", "borealis", "australis", "orientalis", "occidentalis")


@dataclass(frozen=True)
class WorldSpec:
    families: int = 3
    genera_per_family: int = 2
    species_per_genus: int = 4
    observations: int = 100
    photos_per_observation: tuple[int, int] = (1, 4)
    non_plant_fraction: float = 0.05
    photo_size: tuple[int, int] = (500, 375)
    seed: int = 0
    places: int = 0  # sub-places of PLACE_ID; 0: no geography (every species everywhere)
    range_fraction: float = 0.34  # share of the sub-places each species grows in (at least one)
    history: int = 0  # observations that exist before the bot starts: lower ids, created in 2025
    arrive_after_s: float = 0.0  # the `observations` (not the history) appear this long after the server starts


@dataclass(frozen=True)
class SpeciesInfo:
    taxon_id: int
    name: str
    genus_taxon_id: int
    genus: str
    family_taxon_id: int
    family: str
    places: tuple[int, ...] = ()  # the sub-places it grows in (empty: no geography)


PLACE_NAMES = ("Nordvall", "Sudmark", "Ostria", "Westfold", "Mittelberg", "Kustland", "Hochtal", "Seeland")


def place_ids(spec: WorldSpec) -> list[int]:
    """The sub-places of a world with geography."""
    return [PLACE_ID + 1 + i for i in range(spec.places)]


def _ranges(spec: WorldSpec, species: list[SpeciesInfo]) -> list[SpeciesInfo]:
    """Each species' places: a run of consecutive sub-places starting at an offset that differs
    between the species of one genus, so look-alikes rarely share a place (own rng: the taxonomy's
    draws stay what they were)."""
    if spec.places <= 0:
        return species
    rng = random.Random(f"ranges:{spec.seed}")
    places = place_ids(spec)
    width = max(1, round(spec.places * spec.range_fraction))
    out: list[SpeciesInfo] = []
    start = 0
    for i, sp in enumerate(species):
        if i == 0 or sp.genus_taxon_id != species[i - 1].genus_taxon_id:
            start = rng.randrange(spec.places)
        else:
            start += width
        held = tuple(sorted(places[(start + k) % spec.places] for k in range(width)))
        out.append(replace(sp, places=held))
    return out


def _check(spec: WorldSpec) -> None:
    if not (1 <= spec.families <= 99 and 1 <= spec.genera_per_family <= 99):
        raise ValueError("families and genera_per_family must be between 1 and 99")
    if not 1 <= spec.species_per_genus <= len(EPITHETS):
        raise ValueError(f"species_per_genus must be between 1 and {len(EPITHETS)}")
    if not 0 <= spec.places <= 99 or not 0.0 < spec.range_fraction <= 1.0:
        raise ValueError("places must be between 0 and 99 and range_fraction in (0, 1]")


def _taxon(world: World, tid: int, name: str, rank: str, parent: int | None, iconic: str) -> None:
    world.taxa[tid] = SimTaxon(tid, name, rank, parent, iconic, RANK_LEVELS[rank])


def _genus_names(spec: WorldSpec, rng: random.Random) -> list[list[str]]:
    """Unique genus names per family; the family's first genus is its type genus."""
    stems = list(_STEMS)
    rng.shuffle(stems)
    used: set[str] = set()
    out: list[list[str]] = []
    for f in range(spec.families):
        stem = stems[f % len(stems)] + ("" if f < len(stems) else _LINKS[f // len(stems) % 5] + "r")
        names: list[str] = []
        while len(names) < spec.genera_per_family:
            name = stem + rng.choice(_LINKS) + rng.choice(_ENDINGS) if names else stem + "anthus"
            if name not in used:
                used.add(name)
                names.append(name)
        out.append(names)
    return out


def make_taxonomy(spec: WorldSpec) -> tuple[World, list[SpeciesInfo]]:
    """Taxa (plants and a few insects) and users; species in family, genus, species order."""
    _check(spec)
    rng = random.Random(f"taxonomy:{spec.seed}")
    world = World()
    _taxon(world, PLANTAE_ID, "Plantae", "kingdom", None, "Plantae")
    _taxon(world, TRACHEOPHYTA_ID, "Tracheophyta", "phylum", PLANTAE_ID, "Plantae")
    _taxon(world, MAGNOLIOPSIDA_ID, "Magnoliopsida", "class", TRACHEOPHYTA_ID, "Plantae")
    species: list[SpeciesInfo] = []
    for f, genera in enumerate(_genus_names(spec, rng)):
        stem = genera[0][: -len("anthus")]
        order_id, family_id = ORDER_BASE + f // 2, FAMILY_BASE + f
        if order_id not in world.taxa:
            _taxon(world, order_id, stem + "ales", "order", MAGNOLIOPSIDA_ID, "Plantae")
        family = stem + "aceae"
        _taxon(world, family_id, family, "family", order_id, "Plantae")
        for g, genus in enumerate(genera):
            genus_id = GENUS_BASE + f * 100 + g
            _taxon(world, genus_id, genus, "genus", family_id, "Plantae")
            epithets = rng.sample(EPITHETS, spec.species_per_genus)
            for s, epithet in enumerate(epithets):
                sid = SPECIES_BASE + f * 10000 + g * 100 + s
                _taxon(world, sid, f"{genus} {epithet}", "species", genus_id, "Plantae")
                species.append(SpeciesInfo(sid, f"{genus} {epithet}", genus_id, genus, family_id, family))
    _taxon(world, ANIMALIA_ID, "Animalia", "kingdom", None, "Animalia")
    _taxon(world, ARTHROPODA_ID, "Arthropoda", "phylum", ANIMALIA_ID, "Animalia")
    _taxon(world, INSECTA_ID, "Insecta", "class", ARTHROPODA_ID, "Insecta")
    for tid, name in INSECT_SPECIES:
        _taxon(world, tid, name, "species", INSECTA_ID, "Insecta")
    logins = ("plantbot", "moderator", "ana", "bernat", "carme", "dolors", "enric")
    for uid, login in enumerate(logins, start=BOT_USER_ID):
        world.users[uid] = SimUser(uid, login)
    if spec.places:
        world.places[PLACE_ID] = SimPlace(PLACE_ID, "Synthetic region")
        for i, pid in enumerate(place_ids(spec)):
            name = PLACE_NAMES[i % len(PLACE_NAMES)] + ("" if i < len(PLACE_NAMES) else f" {i // len(PLACE_NAMES) + 1}")
            world.places[pid] = SimPlace(pid, name, PLACE_ID)
    return world, _ranges(spec, species)


def look_of(species: SpeciesInfo) -> plants.Look:
    return plants.look_for(species.family_taxon_id, species.genus_taxon_id, species.taxon_id)


def render_photo(species: SpeciesInfo, rng: random.Random, size: tuple[int, int] = (500, 375),
                 tag: str = "habit") -> bytes:
    """A JPEG of `species`: tag habit (whole plant), flower or leaf (close-ups)."""
    return plants.to_jpeg(plants.render(look_of(species), rng, size, tag))


def _pick_tag(position: int, rng: random.Random) -> str:
    """First photos tend to show the whole plant, later ones close-ups, as on the real platform."""
    if position == 0:
        return "habit" if rng.random() < 0.6 else rng.choice(("flower", "leaf"))
    return rng.choice(("habit", "flower", "flower", "leaf"))


def render_photos(n: int, size: int = 500, seed: int = 0) -> list[bytes]:
    """`n` varied plant JPEGs with longer side `size` (for `plantbot bench`)."""
    _, species = make_taxonomy(WorldSpec(families=4, genera_per_family=3, species_per_genus=3, seed=seed))
    rng = random.Random(f"photos:{seed}")
    dims = (size, max(1, size * 3 // 4))
    return [render_photo(species[i % len(species)], rng, dims, plants.TAGS[(i // len(species)) % 3])
            for i in range(n)]


def _observation_state(obs: SimObservation, sp: SpeciesInfo, rng: random.Random, ident_id: int,
                       observers: list[int]) -> int:
    """Give a plant observation its public taxon, grade and identifications; returns the next id."""
    roll = rng.random()
    if roll < 0.25:  # research grade: the observer and another user agree on the true species
        other = rng.choice([u for u in observers if u != obs.user_id])
        obs.taxon_id = obs.community_taxon_id = sp.taxon_id
        obs.quality_grade = "research"
        for uid in (obs.user_id, other):
            obs.identifications.append(SimIdentification(ident_id, uid, sp.taxon_id, created_at=obs.created_at))
            ident_id += 1
    elif roll < 0.45:  # the observer knew the genus or family only
        obs.taxon_id = sp.genus_taxon_id if roll < 0.37 else sp.family_taxon_id
    elif roll < 0.5:  # one unconfirmed species ID
        obs.taxon_id = sp.taxon_id
    else:  # "some plant": what observers do when they only know it is a plant (else iconic_taxa misses it)
        obs.taxon_id = PLANTAE_ID
    if obs.taxon_id is not None and not obs.identifications:
        obs.identifications.append(SimIdentification(ident_id, obs.user_id, obs.taxon_id,
                                                     created_at=obs.created_at))
        ident_id += 1
    return ident_id


HISTORY_START = datetime(2025, 1, 1, tzinfo=UTC)
HISTORY_STEP = timedelta(hours=6)  # history observation k was created HISTORY_START + k * HISTORY_STEP
PLACES = (("Parque del Retiro, Madrid", 40.4153, -3.6845), ("Serra de Collserola, Barcelona", 41.4167, 2.1000),
          ("Jardín Botánico, Valencia", 39.4758, -0.3839), ("Sierra de Grazalema, Cádiz", 36.7590, -5.3790))
DESCRIPTIONS = ("Growing by the path, about knee high.", "On a north-facing slope among rocks.",
                "Several plants together near the stream.", "Flowers open in the morning sun.")


def _observation_context(obs: SimObservation, seed: int) -> None:
    """When and where it was seen, and sometimes a note: what a moderator reads on the card.

    Drawn from its own generator, so worlds keep the same species, photos and identifications.
    """
    rng = random.Random(f"context:{seed}:{obs.id}")
    name, lat, lng = rng.choice(PLACES)
    obs.place_guess = name
    obs.latitude = round(lat + rng.uniform(-0.01, 0.01), 6)
    obs.longitude = round(lng + rng.uniform(-0.01, 0.01), 6)
    obs.positional_accuracy = rng.choice((5, 10, 25, 100))
    obs.observed_at = f"{obs.created_at[:11]}{rng.randint(7, 19):02d}{obs.created_at[13:]}"  # same day
    obs.description = rng.choice(DESCRIPTIONS) if rng.random() < 0.5 else None


def history_created_at(k: int) -> str:
    return (HISTORY_START + k * HISTORY_STEP).isoformat()


def make_world(spec: WorldSpec) -> tuple[World, list[SpeciesInfo]]:
    """Taxonomy plus `spec.history` older and `spec.observations` new observations with rendered photos.

    Deterministic per seed.  The history comes first (ids from FIRST_OBSERVATION_ID, created every
    six hours from 2025-01-01); the new observations follow (created in January 2026) and appear
    `arrive_after_s` after the server starts, so a bot started meanwhile sees them arrive.
    Plant observations show their true species (`true_taxon_id`); about `non_plant_fraction` are
    insects with their insect taxon.  All lie in place PLACE_ID; even ids belong to PROJECT_ID.
    """
    world, species = make_taxonomy(spec)
    rng = random.Random(f"world:{spec.seed}")
    observers = [u for u in world.users if u not in (BOT_USER_ID, MODERATOR_USER_ID)]
    lo, hi = spec.photos_per_observation
    photo_id, ident_id = FIRST_PHOTO_ID, 1
    growing = {pid: [sp for sp in species if pid in sp.places] for pid in place_ids(spec)}
    growing = {pid: found for pid, found in growing.items() if found}
    for n in range(spec.history + spec.observations):
        oid = FIRST_OBSERVATION_ID + n
        k = n - spec.history
        minute = k % 60
        created = (history_created_at(n) if k < 0 else
                   f"2026-01-{1 + k // 1440 % 28:02d}T{k // 60 % 24:02d}:{minute:02d}:00+00:00")
        obs = SimObservation(id=oid, user_id=rng.choice(observers), photo_ids=[], created_at=created,
                             place_ids=[PLACE_ID], project_ids=[PROJECT_ID] if oid % 2 == 0 else [],
                             release_after_s=spec.arrive_after_s if k >= 0 else 0.0)
        n_photos = rng.randint(lo, hi)
        if rng.random() < spec.non_plant_fraction:
            insect_id = rng.choice(INSECT_SPECIES)[0]
            obs.taxon_id = obs.true_taxon_id = insect_id
            obs.identifications.append(SimIdentification(ident_id, obs.user_id, insect_id,
                                                         created_at=obs.created_at))
            ident_id += 1
            images = [plants.to_jpeg(plants.render_insect(insect_id, rng, spec.photo_size)) for _ in range(n_photos)]
        else:
            if growing:  # a place first, then a species that grows there
                place = rng.choice(sorted(growing))
                sp = rng.choice(growing[place])
                obs.place_ids.append(place)
            else:
                sp = rng.choice(species)
            obs.true_taxon_id = sp.taxon_id
            obs.captive = rng.random() < 0.03
            ident_id = _observation_state(obs, sp, rng, ident_id, observers)
            images = [render_photo(sp, rng, spec.photo_size, _pick_tag(i, rng)) for i in range(n_photos)]
        _observation_context(obs, spec.seed)
        for data in images:
            world.photos[photo_id] = data
            obs.photo_ids.append(photo_id)
            photo_id += 1
        world.observations[oid] = obs
    return world, species


def world_truth(world: World) -> dict[int, int]:
    """Observation id -> true taxon id (species for plants, the insect for non-plants)."""
    return {o.id: o.true_taxon_id for o in world.observations.values() if o.true_taxon_id is not None}


def place_flora(species: list[SpeciesInfo], place_id: int) -> list[SpeciesInfo]:
    """The species that grow in a sub-place (the checklist a community would write in a flora file)."""
    return [sp for sp in species if place_id in sp.places]


def write_flora_file(species: list[SpeciesInfo], place_id: int, path: Path) -> Path:
    """A flora file (`taxon_id,name`) of the species growing in `place_id`: the input of `--flora`."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["taxon_id", "name"])
        w.writerows((sp.taxon_id, sp.name) for sp in place_flora(species, place_id))
    return path


def write_place_manifest(world: World, species: list[SpeciesInfo], place_id: int, folder: Path) -> Path:
    """The photos of the plant observations lying in `place_id`, labelled with their true species, as a
    manifest (`path,label,observation_id`) for `evaluate`: what a community in that place would see."""
    ids = [o.id for o in world.observations.values() if place_id in o.place_ids]
    return write_observation_manifest(world, species, ids, folder)


def write_observation_manifest(world: World, species: list[SpeciesInfo], observation_ids: list[int],
                               folder: Path) -> Path:
    """These observations' photos labelled with their true species (plants only), as a manifest."""
    import csv

    folder = Path(folder)
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    names = {sp.taxon_id: sp.name for sp in species}
    wanted = set(observation_ids)
    rows: list[tuple[str, str, int]] = []
    for obs in sorted(world.observations.values(), key=lambda o: o.id):
        if obs.id not in wanted or obs.true_taxon_id not in names:
            continue
        for pid in obs.photo_ids:
            (folder / "photos" / f"{pid}.jpg").write_bytes(world.photos[pid])
            rows.append((f"photos/{pid}.jpg", names[obs.true_taxon_id], obs.id))
    path = folder / "manifest.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "observation_id"])
        w.writerows(rows)
    return path


def labels_for(species: list[SpeciesInfo]) -> list[Label]:
    """Bundle labels for these species, index order = list order."""
    return [Label(i, s.taxon_id, s.name, "species", s.genus_taxon_id, s.genus, s.family_taxon_id, s.family)
            for i, s in enumerate(species)]


def write_image_folder(species: list[SpeciesInfo], root: Path, per_species: int, seed: int,
                       size: tuple[int, int] = (256, 192), tags: bool = True) -> Path:
    """ROOT/<species name>/NNNN.jpg plus taxonomy.csv (and tags.csv): the input of `dataset from-folder`."""
    import csv

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"folder:{seed}")
    tag_rows: list[tuple[str, str]] = []
    for sp in species:
        folder = root / sp.name
        folder.mkdir(exist_ok=True)
        for i in range(per_species):
            tag = plants.TAGS[i % 3] if tags else "habit"
            (folder / f"{i:04d}.jpg").write_bytes(render_photo(sp, rng, size, tag))
            tag_rows.append((f"{sp.name}/{i:04d}.jpg", tag))
    with open(root / "taxonomy.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "genus", "family", "taxon_id", "genus_taxon_id", "family_taxon_id"])
        for sp in species:
            w.writerow([sp.name, sp.genus, sp.family, sp.taxon_id, sp.genus_taxon_id, sp.family_taxon_id])
    if tags:
        with open(root / "tags.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "tag"])
            w.writerows(tag_rows)
    return root
