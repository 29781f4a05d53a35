"""The flora of a place: the synthetic world's geography, the simulator's species_counts, the cache.

Against the simulator: a refresh costs a known number of requests, the list survives a restart, a
failed or over-budget refresh keeps the last good list and `status` says so, and a cycle records the
flora it applied on each decision.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from sqlalchemy import select

from bot import flora_cache
from bot.classifier import Classifier, build_model, save_bundle
from bot.cli import main
from bot.config import ConfigError
from bot.cycle import run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.model import World
from bot.sim.server import SimServer
from bot.sim.world import PLACE_ID, SpeciesInfo, WorldSpec, labels_for, make_world, place_ids, write_flora_file
from bot.store import Store
from bot.store.models import DecisionRow, PredictionRow
from tests.support.simconfig import sim_config

SPEC = WorldSpec(families=2, genera_per_family=1, species_per_genus=3, observations=80, places=3,
                 photos_per_observation=(1, 1), photo_size=(48, 36), non_plant_fraction=0.0, seed=5)


@pytest.fixture(scope="module")
def geo() -> tuple[World, list[SpeciesInfo]]:
    return make_world(SPEC)


def test_species_grow_in_some_places_and_observations_lie_where_their_species_grows(geo) -> None:  # type: ignore[no-untyped-def]
    world, species = geo
    subs = place_ids(SPEC)
    assert set(world.places) == {PLACE_ID, *subs} and all(world.places[p].parent_id == PLACE_ID for p in subs)
    assert all(sp.places and set(sp.places) < set(subs) for sp in species)  # nowhere is everything
    for a in species:  # look-alikes (one genus) never share a place in this world
        assert all(not set(a.places) & set(b.places) for b in species
                   if b.genus_taxon_id == a.genus_taxon_id and b is not a)
    where = {sp.taxon_id: set(sp.places) for sp in species}
    for obs in world.observations.values():
        assert obs.place_ids[0] == PLACE_ID and len(obs.place_ids) == 2
        assert obs.place_ids[1] in where[obs.true_taxon_id]
    assert make_world(SPEC)[0].observations.keys() == world.observations.keys()


def test_a_world_without_geography_is_unchanged() -> None:
    world, species = make_world(WorldSpec(families=1, genera_per_family=1, species_per_genus=2, observations=5,
                                          photo_size=(16, 12), seed=1))
    assert world.places == {} and all(sp.places == () for sp in species)
    assert all(o.place_ids == [PLACE_ID] for o in world.observations.values())


def _platform(tmp_path: Path, sim: SimServer, extra: str = "", retries: int = 4):  # type: ignore[no-untyped-def]
    cfg = sim_config(tmp_path, sim, tmp_path / "no-bundle", extra=extra)
    cfg = replace(cfg, platform=replace(cfg.platform, max_retries=retries))
    store = Store(cfg.database_path)
    return cfg, store, create_platform(cfg, dry_run=True)


def test_species_counts_lists_the_leaf_taxa_recorded_in_a_place(tmp_path: Path, geo) -> None:  # type: ignore[no-untyped-def]
    world, species = geo
    place = place_ids(SPEC)[0]
    with SimServer(copy.deepcopy(world)) as sim:
        cfg, store, platform = _platform(tmp_path, sim)
        try:
            results, total = platform.get_species_counts(place, 1, 500)
        finally:
            platform.close()
            store.close()
    assert total == len(results) > 0
    counts = [n for _, n in results]
    assert counts == sorted(counts, reverse=True)
    here = [o for o in world.observations.values() if place in o.place_ids and not o.captive]
    growing = {sp.taxon_id for sp in species if place in sp.places}
    for taxon, n in results:
        assert n == sum(o.taxon_id == taxon.id for o in here)
        if taxon.rank == "species":
            assert taxon.id in growing  # nothing recorded where it does not grow
        else:  # a coarser taxon is a leaf only when none of its species was recorded there
            assert not any(t.rank == "species" and taxon.id in t.ancestor_ids for t, _ in results)
    recorded = {t.id for t, _ in results if t.rank == "species"}
    assert recorded == {o.taxon_id for o in here if o.taxon_id in growing}


def test_refresh_costs_one_request_a_page_and_survives_a_restart(tmp_path: Path, geo,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    world, _ = geo
    place = place_ids(SPEC)[1]
    monkeypatch.setattr(flora_cache, "PER_PAGE", 1)
    with SimServer(copy.deepcopy(world)) as sim:
        cfg, store, platform = _platform(tmp_path, sim, f'[decision]\nflora = "place"\nflora_place_id = {place}\n')
        try:
            before = len(sim.requests)
            outcome = flora_cache.refresh_flora(cfg, store, platform)
            sent = [r for r in sim.requests[before:] if r.path.endswith("/species_counts")]
            _, total = platform.get_species_counts(place, 1, 500)
        finally:
            platform.close()
            store.close()
    assert outcome is not None and outcome.ok and outcome.error is None
    assert outcome.requests == len(sent) == math.ceil(total / 1) >= 2
    assert all(r.query["place_id"] == [str(place)] and r.query["verifiable"] == ["true"] for r in sent)
    reopened = Store(cfg.database_path)  # a restart: a new process opens the same database
    try:
        flora = flora_cache.load_flora(cfg, reopened)
    finally:
        reopened.close()
    assert flora is not None and len(flora.taxon_ids) == outcome.taxa > 0
    assert flora.source == f"place:{place}" and flora.place_name == f"place {place}"


def _status(cfg_path: Path) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["--config", str(cfg_path), "status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["flora"]


def test_a_failed_refresh_keeps_the_last_list_and_status_says_so(tmp_path: Path, geo,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    world, _ = geo
    place = place_ids(SPEC)[2]
    with SimServer(copy.deepcopy(world)) as sim:
        cfg, store, platform = _platform(
            tmp_path, sim, f'[decision]\nflora = "place"\nflora_place_id = {place}\n', retries=0)
        try:
            good = flora_cache.refresh_flora(cfg, store, platform)
            assert good is not None and good.ok
            assert _status(tmp_path / "config.toml")["last_refresh_ok"] is True
            sim.faults = FaultPlan([FaultRule("GET /v1/observations/species_counts", "status", status=503)])
            failed = flora_cache.refresh_flora(cfg, store, platform)
            sim.faults = FaultPlan([])
            monkeypatch.setattr(flora_cache, "PER_PAGE", 1)  # the place now needs more pages than allowed
            too_big = flora_cache.refresh_flora(
                replace(cfg, decision=replace(cfg.decision, flora_max_requests=1)), store, platform)
            flora = flora_cache.load_flora(cfg, store)
        finally:
            platform.close()
            store.close()
    assert failed is not None and not failed.ok and failed.taxa == good.taxa and "503" in (failed.error or "")
    assert too_big is not None and not too_big.ok and too_big.requests == 1
    assert "flora_max_requests" in (too_big.error or "")
    assert flora is not None and len(flora.taxon_ids) == good.taxa
    status = _status(tmp_path / "config.toml")
    assert status["last_refresh_ok"] is False and status["species"] == good.taxa
    assert "flora_max_requests" in status["last_refresh_error"]


def test_place_flora_needs_the_v1_api_and_a_place(tmp_path: Path) -> None:
    from bot.config import load_config

    path = tmp_path / "c.toml"
    path.write_text('[platform]\npreset = "legacy"\nsite_url = "https://x.test"\nplace_id = 3\n'
                    '[decision]\nflora = "place"\n')
    with pytest.raises(ConfigError, match="legacy site has no equivalent"):
        load_config(path)
    path.write_text('[decision]\nflora = "place"\n')
    with pytest.raises(ConfigError, match="needs a place"):
        load_config(path)
    path.write_text('[decision]\nflora = "file"\n')
    with pytest.raises(ConfigError, match="flora_file: required"):
        load_config(path)


def test_a_cycle_records_the_flora_it_applied(tmp_path: Path) -> None:
    torch.manual_seed(0)
    world, species = make_world(WorldSpec(families=1, genera_per_family=2, species_per_genus=2, observations=8,
                                          places=2, photos_per_observation=(1, 1), photo_size=(48, 36),
                                          non_plant_fraction=0.0, seed=2))
    labels = labels_for(species)
    bundle = save_bundle(tmp_path / "bundle", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    place = place_ids(WorldSpec(places=2))[0]
    listed = {sp.taxon_id for sp in species if place in sp.places}
    outside = {sp.taxon_id for sp in species} - listed
    flora_file = write_flora_file(species, place, tmp_path / "flora.csv")
    with SimServer(world) as sim:
        cfg = sim_config(tmp_path, sim, bundle.path,
                         extra=f'[decision]\nflora = "file"\nflora_file = "{flora_file}"\n'
                               'flora_place_name = "Nordvall"\n')
        store = Store(cfg.database_path)
        platform = create_platform(cfg, dry_run=True)
        try:
            run_cycle(cfg, store, platform, Classifier(bundle, threads=1), mode=RunMode.DRY_RUN)
            with store.session() as s:
                rows = [(d, list(s.scalars(select(PredictionRow).where(PredictionRow.decision_id == d.id,
                                                                          PredictionRow.rank == "species"))))
                        for d in s.scalars(select(DecisionRow).where(DecisionRow.kind != "skip"))]
                s.expunge_all()
        finally:
            platform.close()
            store.close()
    assert rows and listed and outside
    for d, preds in rows:
        assert d.flora == f"file:{flora_file}" and d.flora_name == "Nordvall"
        assert {r["taxon_id"] for r in d.flora_removed or []} == outside  # 4 species: all in the top 5
        assert all(p.prob == 0.0 for p in preds if p.taxon_id in outside)
        assert d.kind != "species" or d.taxon_id in listed


def test_the_daemon_reads_the_place_flora_before_its_first_cycle_and_schedules_a_refresh(tmp_path: Path) -> None:
    from bot.daemon import FLORA_JOB, DaemonContext, build_scheduler, run_daemon
    from bot.store.flora import get_refresh_state

    torch.manual_seed(0)
    world, species = make_world(WorldSpec(families=1, genera_per_family=2, species_per_genus=2, observations=12,
                                          places=2, photos_per_observation=(1, 1), photo_size=(48, 36),
                                          non_plant_fraction=0.0, seed=3))
    labels = labels_for(species)
    bundle = save_bundle(tmp_path / "bundle", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    place = place_ids(WorldSpec(places=2))[0]
    with SimServer(world) as sim:
        cfg = sim_config(tmp_path, sim, bundle.path,
                         extra=f'[decision]\nflora = "place"\nflora_place_id = {place}\n')
        assert run_daemon(cfg, max_cycles=1, classifier=Classifier(bundle, threads=1), install_signals=False) == 0
    store = Store(cfg.database_path)
    try:
        with store.session() as s:
            state = get_refresh_state(s, f"place:{place}")
            floras = set(s.scalars(select(DecisionRow.flora).where(DecisionRow.kind != "skip")))
        ctx = DaemonContext(cfg=cfg, store=store, platform=None, classifier=None, mode=RunMode.DRY_RUN)  # type: ignore[arg-type]
        job = build_scheduler(ctx).get_job(FLORA_JOB)
    finally:
        store.close()
    assert state.ok and state.requests == 1 and state.taxa > 0  # read at start-up, one page
    assert floras == {f"place:{place}"}  # the first cycle already applied it
    assert job is not None and job.trigger.interval.total_seconds() == 604800  # weekly by default
