"""A tiny simulator world for the simulator's own tests: a few taxa, three users, 255 observations."""

from __future__ import annotations

import io

from PIL import Image

from bot.sim.model import SimIdentification, SimObservation, SimTaxon, SimUser, World

PLANTAE, ROSACEAE, ROSA, CANINA, RUBIGINOSA = 47126, 100, 101, 102, 103
ANIMALIA, INSECTA, APIS = 1, 47158, 200
BIG, SMALL, SQUARE, BROKEN = 1, 2, 3, 4  # photo ids
N_PLANTS = 250


def jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_world() -> World:
    """Observations 1..250 are plants (Rosa canina, odd ids in place 5, every 10th research grade,
    id 7 captive, id 13 without photos, id 17 deleted, id 19 released only after an hour);
    251..255 are bees. Photo 1 is 600x400, 2 is 200x150, 3 is 75x75, 4 is not an image."""
    world = World()
    for taxon in (SimTaxon(PLANTAE, "Plantae", "kingdom"), SimTaxon(ROSACEAE, "Rosaceae", "family", PLANTAE),
                  SimTaxon(ROSA, "Rosa", "genus", ROSACEAE), SimTaxon(CANINA, "Rosa canina", "species", ROSA),
                  SimTaxon(RUBIGINOSA, "Rosa rubiginosa", "species", ROSA),
                  SimTaxon(ANIMALIA, "Animalia", "kingdom", None, "Animalia"),
                  SimTaxon(INSECTA, "Insecta", "class", ANIMALIA, "Insecta"),
                  SimTaxon(APIS, "Apis mellifera", "species", INSECTA, "Insecta")):
        world.taxa[taxon.id] = taxon
    for user in (SimUser(1, "plantbot", "botpass"), SimUser(2, "moderator", "modpass"),
                 SimUser(3, "observer", "obspass")):
        world.users[user.id] = user
    world.photos = {BIG: jpeg((600, 400), (200, 30, 30)), SMALL: jpeg((200, 150), (30, 200, 30)),
                    SQUARE: jpeg((75, 75), (30, 30, 200)), BROKEN: b"this is not a jpeg at all"}
    for oid in range(1, N_PLANTS + 1):
        obs = SimObservation(id=oid, user_id=3, photo_ids=[BIG, SMALL] if oid % 3 == 0 else [SMALL],
                             taxon_id=CANINA if oid % 2 else ROSA,
                             place_ids=[5] if oid % 2 else [6], project_ids=[7] if oid % 4 == 0 else [],
                             quality_grade="research" if oid % 10 == 0 else "needs_id")
        obs.identifications.append(SimIdentification(id=oid, user_id=3, taxon_id=obs.taxon_id or ROSA))
        world.observations[oid] = obs
    world.observations[7].captive = True
    world.observations[13].photo_ids = []
    world.observations[17].deleted = True
    world.observations[19].release_after_s = 3600.0
    for oid in range(N_PLANTS + 1, N_PLANTS + 6):
        world.observations[oid] = SimObservation(id=oid, user_id=3, photo_ids=[SQUARE], taxon_id=APIS)
    return world


VISIBLE_PLANTS_WITH_PHOTOS = [i for i in range(1, N_PLANTS + 1) if i not in (13, 17, 19)]
