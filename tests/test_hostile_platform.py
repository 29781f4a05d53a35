"""A hostile platform: one page mixing good observations with every bad record an attacker (or a broken
fork) can serve. Every good observation is decided in one cycle, each bad one is recorded with its reason,
and the cursor moves past the good ones without ever jumping to a bogus id.  Both API flavors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from bot.classifier import Classifier, build_model, save_bundle
from bot.config import Config
from bot.cycle import CycleSummary, cursor_key, run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.sim.model import SimObservation
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world
from bot.store import Store
from bot.store.models import DecisionRow, PhotoRow
from bot.store.records import get_cursor, list_decisions, list_photo_records, list_rejected
from tests.support.simconfig import sim_config

GOOD = 20
# world key -> (fields served in place of the real ones, a word the recorded reason must contain)
HOSTILE: dict[int, tuple[dict[str, object], str]] = {
    2001: ({"id": 2**64 + 7}, "outside"),  # beyond 64 bits: made upsert overflow
    2002: ({"id": 9223372036854775807}, "outside"),  # the largest 64-bit id: moved the cursor to the end
    2003: ({"id": "1007.0"}, "integer"),
    2004: ({"id": 1007.0}, "integer"),
    2005: ({"id": True}, "boolean"),
    2006: ({"id": -5}, "outside"),
    2007: ({"id": 2007 + 50_000_000}, "suspicious"),  # an implausible jump: rejected, cursor stays
}
DUPLICATE_PHOTOS = 2008  # lists the same photo twice: made the unique constraint fail
JAVASCRIPT_URI = 2009  # stored raw, never rendered as a link (tests/test_report_hostile.py checks the report)
OTHER_PORT_PHOTO = 2010  # a photo on an allowed host but another port: refused, decided as a skip with the reason


def hostile_world(flavor: str = "inat-v1"):  # type: ignore[no-untyped-def]
    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=GOOD,
                                          photos_per_observation=(1, 2), photo_size=(64, 48),
                                          non_plant_fraction=0.0, seed=12))
    template = world.observations[min(world.observations)]
    photo = template.photo_ids[0]

    def add(key: int, photo_ids: list[int] | None = None, **kw: object) -> None:
        world.observations[key] = SimObservation(id=key, user_id=template.user_id, photo_ids=photo_ids or [photo],
                                                 taxon_id=template.taxon_id, **kw)  # type: ignore[arg-type]

    for key, (served, _) in HOSTILE.items():
        add(key, served=served)
    add(DUPLICATE_PHOTOS, photo_ids=[photo, photo])
    add(JAVASCRIPT_URI, served={"uri": "javascript:alert(document.domain)"})
    odd_url = "https://static.inaturalist.org:8443/photos/990010/square.jpg"
    if flavor == "legacy":  # a fork lists photos with one URL per size word
        add(OTHER_PORT_PHOTO, served={"photos": [{"id": 990010, "square_url": odd_url,
                                                  "medium_url": odd_url.replace("square", "medium")}]})
    else:
        odd = {"id": 990010, "url": odd_url}
        add(OTHER_PORT_PHOTO, served={"photos": [odd], "observation_photos": [{"id": 1, "position": 0, "photo": odd}]})
    return world, species


@pytest.fixture(params=["inat-v1", "legacy"])
def hostile(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    world, species = hostile_world(request.param)
    labels = labels_for(species)
    bundle = save_bundle(tmp_path / "bundle", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    with SimServer(world) as sim:
        cfg = sim_config(tmp_path, sim, bundle.path, flavor=request.param)
        cfg.platform.photo_hosts = ["static.inaturalist.org"]  # the default port only
        store = Store(cfg.database_path)
        yield sim, cfg, store, Classifier(bundle, threads=1)
        store.close()


def one_cycle(cfg: Config, store: Store, classifier: Classifier) -> tuple[CycleSummary, str]:
    platform = create_platform(cfg, dry_run=True)
    try:
        return run_cycle(cfg, store, platform, classifier, mode=RunMode.DRY_RUN), cursor_key(cfg, platform)
    finally:
        platform.close()


def test_a_hostile_page_is_decided_in_one_cycle_and_each_bad_record_is_kept_with_its_reason(hostile) -> None:  # type: ignore[no-untyped-def]
    sim, cfg, store, classifier = hostile
    good = {oid for oid in sim.world.observations if oid < 2000} | {DUPLICATE_PHOTOS, JAVASCRIPT_URI,
                                                                    OTHER_PORT_PHOTO}
    summary, key = one_cycle(cfg, store, classifier)
    assert summary.status == "ok", summary.errors
    with store.session() as s:
        decided = set(s.scalars(select(DecisionRow.observation_id)))
        rejected = list_rejected(s)
        cursor = get_cursor(s, key)
        dup_photos = list(s.scalars(select(PhotoRow.photo_id).where(PhotoRow.observation_id == DUPLICATE_PHOTOS)))
        odd_photo = next(iter(list_photo_records(s, OTHER_PORT_PHOTO)), None)
        odd_decision = next(iter(list_decisions(s, [OTHER_PORT_PHOTO])), None)
    assert good <= decided, f"undecided: {sorted(good - decided)}"
    assert len(dup_photos) == 1  # de-duplicated
    assert odd_photo is not None and odd_photo.status == "refused" and "port 8443" in (odd_photo.error or "")
    assert odd_decision is not None and odd_decision.kind == "skip" and "port 8443" in " ".join(odd_decision.reasons)
    assert summary.rejected == len(HOSTILE)
    assert len(rejected) == len(HOSTILE)
    for served, word in HOSTILE.values():
        raw = repr(served["id"])
        hits = [r for r in rejected if r.raw_id == raw]
        assert hits, f"no rejected entry for id {raw}: {[(r.raw_id, r.reason) for r in rejected]}"
        assert word in hits[0].reason.lower(), hits[0].reason
    assert cursor == max(good)  # moved past the good ones, never to a bogus id
    second, _ = one_cycle(cfg, store, classifier)  # the bad records no longer block anything
    assert second.status == "ok" and second.decided == 0


def test_new_observations_after_a_bogus_id_are_still_read(hostile) -> None:  # type: ignore[no-untyped-def]
    sim, cfg, store, classifier = hostile
    one_cycle(cfg, store, classifier)
    with sim.lock:
        template = sim.world.observations[min(sim.world.observations)]
        sim.world.observations[3000] = SimObservation(id=3000, user_id=template.user_id,
                                                      photo_ids=list(template.photo_ids), taxon_id=template.taxon_id)
    summary, key = one_cycle(cfg, store, classifier)
    with store.session() as s:
        assert s.scalar(select(DecisionRow.id).where(DecisionRow.observation_id == 3000)) is not None
        assert get_cursor(s, key) == 3000
    assert summary.decided == 1
