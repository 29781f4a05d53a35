"""The cycle's bookkeeping when something outside the observation stops it: nothing lost, nothing doubled.

Every test runs against both API flavors (iNaturalist v1 and a legacy Rails fork).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from sqlalchemy import func, select

from bot.classifier import Classifier, build_model, save_bundle
from bot.config import Config
from bot.cycle import run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world
from bot.store import Store
from bot.store.models import DecisionRow, ObservationRow
from bot.store.records import list_decisions
from tests.support.simconfig import sim_config

# How a flavor re-reads known observations by id: v1 has its own path, a fork lists them with `id[]=`.
RE_READ = {"inat-v1": FaultRule("GET /v1/observations/*", "status", status=500),
           "legacy": FaultRule("GET /observations.json", "status", status=500, with_param="id[]")}


@pytest.fixture(params=["inat-v1", "legacy"])
def setup(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=30,
                                          photos_per_observation=(1, 2), photo_size=(64, 48), seed=4))
    plants = {o.id for o in world.observations.values() if world.iconic_taxon_name(o.taxon_id) == "Plantae"}
    labels = labels_for(species)
    bundle = save_bundle(tmp_path / "bundle", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    with SimServer(world) as sim:
        cfg = sim_config(tmp_path, sim, bundle.path, flavor=request.param)
        store = Store(cfg.database_path)
        yield sim, cfg, store, Classifier(bundle, threads=1), plants
        store.close()


def decisions_per_observation(store: Store) -> dict[int, int]:
    with store.session() as s:
        return dict(s.execute(select(DecisionRow.observation_id, func.count())  # type: ignore[arg-type]
                              .group_by(DecisionRow.observation_id)).all())


def cycle(cfg: Config, store: Store, classifier: Classifier):  # type: ignore[no-untyped-def]
    platform = create_platform(cfg, dry_run=True)
    try:
        return run_cycle(cfg, store, platform, classifier, mode=RunMode.DRY_RUN)
    finally:
        platform.close()


def test_spent_media_budget_pauses_and_loses_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    sim, cfg, store, classifier, plants = setup
    tight = replace(cfg, photos=replace(cfg.photos, media_bytes_per_hour=6_000))
    first = cycle(tight, store, classifier)
    assert first.status == "paused" and "media budget" in (first.paused or "")
    decided = decisions_per_observation(store)
    assert 0 < len(decided) < len(plants)
    with store.session() as s:
        assert all(a == 0 for a in s.scalars(select(ObservationRow.attempts)))  # a budget is no one's fault
    roomy = replace(cfg, photos=replace(cfg.photos, media_bytes_per_hour=10**9))
    second = cycle(roomy, store, classifier)
    assert second.status == "ok"
    final = decisions_per_observation(store)
    assert set(final) == plants and max(final.values()) == 1
    assert not any(d == "no loadable photo" for d in second.skipped)


def test_a_failing_re_read_does_not_stop_polling(setup) -> None:  # type: ignore[no-untyped-def]
    sim, cfg, store, classifier, plants = setup
    sim.faults = FaultPlan([FaultRule("GET /photos/*", "status", status=503)])
    cycle(cfg, store, classifier)  # every photo fails: all but the skipped-before-download are left for later
    assert len(decisions_per_observation(store)) < len(plants) // 2
    sim.faults = FaultPlan([replace(RE_READ[cfg.platform.flavor])])  # re-reads fail, polling works
    with sim.lock:
        new_id = max(sim.world.observations) + 1
        template = sim.world.observations[min(plants)]
        sim.world.observations[new_id] = replace(template, id=new_id, identifications=[], comments=[])
    summary = cycle(cfg, store, classifier)
    assert summary.errors and "re-reading" in summary.errors[0]
    assert new_id in decisions_per_observation(store)  # the new observation was still polled and decided


def test_an_observation_deleted_upstream_ends_with_a_skip_after_the_last_try(setup) -> None:  # type: ignore[no-untyped-def]
    sim, cfg, store, classifier, plants = setup
    sim.faults = FaultPlan([FaultRule("GET /photos/*", "status", status=503)])
    cycle(cfg, store, classifier)  # photos fail: left for later
    left = sorted(plants - set(decisions_per_observation(store)))
    assert left
    with sim.lock:
        sim.world.observations[left[0]].deleted = True
    sim.faults = None
    for _ in range(3):
        cycle(cfg, store, classifier)
    with store.session() as s:
        [row] = list_decisions(s, [left[0]])
    assert row.kind == "skip" and "no longer returned" in row.reasons[0]
    final = decisions_per_observation(store)
    assert set(final) == plants and max(final.values()) == 1
