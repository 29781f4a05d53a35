"""Issue 4's acceptance: a long run against a misbehaving API loses nothing and decides nothing twice.

Real rate limit (1 request per second), a fault mix on the listing and on the photos, several
cycles; at the end every plant observation has exactly one decision and the simulator's own request
log shows the API was never asked more than once per second.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from sqlalchemy import func, select

from bot.classifier import Classifier, build_model, save_bundle
from bot.cycle import run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.sim.faults import FaultPlan
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world
from bot.store import Store
from bot.store.models import DecisionRow
from tests.support.simconfig import sim_config

FAULTS = [
    "GET /v1/observations*=status:500@0.12",
    "GET /v1/observations*=status:502@0.04",
    "GET /v1/observations*=status:503@0.04",
    "GET /v1/observations*=status:429:1@0.05",
    "GET /v1/observations*=slow:1.5@0.05",
    "GET /v1/observations*=reset@0.03",
    "GET /photos/*=status:503@0.08",
    "GET /photos/*=reset@0.02",
    "GET /photos/*=corrupt@0.02",
    "GET /photos/*=truncate@0.02",
]


def faults_for(flavor: str) -> list[str]:
    """The same mix on the flavor's own listing route."""
    listing = "/v1/observations*" if flavor == "inat-v1" else "/observations.json*"
    return [f.replace("/v1/observations*", listing) for f in FAULTS]


@pytest.mark.slow
@pytest.mark.parametrize("flavor", ["inat-v1", "legacy"])
def test_fault_mix_every_observation_decided_once_at_most_one_request_a_second(tmp_path: Path, flavor: str) -> None:
    torch.manual_seed(0)
    world, species = make_world(WorldSpec(families=3, genera_per_family=2, species_per_genus=2, observations=560,
                                          photos_per_observation=(1, 2), photo_size=(96, 72), seed=3))
    plants = {o.id for o in world.observations.values() if world.iconic_taxon_name(o.taxon_id) == "Plantae"}
    assert len(plants) >= 500
    labels = labels_for(species)
    bundle = save_bundle(tmp_path / "bundle", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    with SimServer(world, faults=FaultPlan.parse(faults_for(flavor), seed=11)) as sim:
        cfg = sim_config(tmp_path, sim, bundle.path, requests_per_second=1.0,
                         extra="[photos]\ntimeout_seconds = 5.0", flavor=flavor)
        store = Store(cfg.database_path)
        platform = create_platform(cfg, dry_run=True)
        classifier = Classifier(bundle, batch_size=64)
        statuses = []
        for _ in range(8):
            summary = run_cycle(cfg, store, platform, classifier, mode=RunMode.DRY_RUN)
            statuses.append(summary.status)
            with store.session() as s:
                decided = set(s.scalars(select(DecisionRow.observation_id)))
            if plants <= decided and summary.status == "ok" and summary.left_for_next == 0:
                break
        with store.session() as s:
            per_obs = Counter(dict(s.execute(select(DecisionRow.observation_id, func.count())
                                              .group_by(DecisionRow.observation_id)).all()))
        store.close()
        api_rate = sim.max_requests_in_window(1.0, path_prefix="/v1" if flavor == "inat-v1" else "/observations")
        faults_seen = Counter(r.fault for r in sim.requests if r.fault)
    assert set(per_obs) == plants, f"undecided: {sorted(plants - set(per_obs))[:10]} after {statuses}"
    assert max(per_obs.values()) == 1
    assert api_rate <= 1
    assert sim.writes == []
    assert {"status", "reset"} <= set(faults_seen)  # the faults really happened
