"""The card's stored context and flags through Flask's test client: stale contexts are re-read in one
batched request per page, fresh ones are not, and a roll-up whose best genus lies outside the best
family is flagged with each genus's family named.  Both API flavors."""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.store.db import Store
from bot.store.models import ObservationRow, PredictionRow
from bot.store.review import utcnow
from tests.web.review_ui_helpers import build_app, make_config, observation_reads, seed_proposals, sign_in


def test_stale_contexts_are_re_read_in_one_batched_request_per_page(sim: Any, store: Store, tmp_path: Path,
                                                                     flavor: str) -> None:
    seeded = seed_proposals(store, sim.world, sim, kinds=("species", "genus", "species"))
    client = build_app(make_config(sim, tmp_path, flavor=flavor), store).test_client()
    sign_in(client)

    def _observation_reads(sim: Any) -> list[list[int]]:
        return observation_reads(sim, flavor)

    before = len(_observation_reads(sim))
    page = html.unescape(client.get("/").get_data(as_text=True))
    reads = _observation_reads(sim)[before:]
    assert len(reads) == 1 and sorted(reads[0]) == sorted(seeded.observation_ids)
    first = sim.world.observations[seeded.observation_ids[0]]
    assert first.place_guess in page and f"{first.latitude:.5f}" in page  # stored and shown
    client.get("/")
    assert len(_observation_reads(sim)) == before + 1  # fresh now: no second read
    with store.session() as s:  # an hour later than the configured age: read again
        for row in s.query(ObservationRow):
            row.context_at = utcnow() - timedelta(hours=1)
    client.get("/")
    assert len(_observation_reads(sim)) == before + 2


def test_a_rollup_whose_best_genus_is_outside_the_best_family_is_flagged(sim: Any, store: Store,
                                                                          tmp_path: Path, flavor: str) -> None:
    seeded = seed_proposals(store, sim.world, sim, kinds=("genus",))
    did = seeded.decision_ids[0]
    families = sorted(t.id for t in sim.world.taxa.values() if t.rank == "family" and t.iconic_taxon_name == "Plantae")
    with store.session() as s:
        genus = s.query(PredictionRow).filter_by(decision_id=did, rank="genus").one()
        genus_name = genus.name  # read inside the session: rows do not outlive it
        own_family = sim.world.taxa[genus.taxon_id].parent_id
        other = next(f for f in families if f != own_family)
        best = s.query(PredictionRow).filter_by(decision_id=did, rank="family").one()
        best.taxon_id, best.name = other, sim.world.taxa[other].name  # the best family is another one
        s.add(PredictionRow(decision_id=did, rank="family", position=1, taxon_id=own_family,
                            name=sim.world.taxa[own_family].name, prob=0.2))
    client = build_app(make_config(sim, tmp_path, flavor=flavor), store).test_client()
    sign_in(client)
    page = html.unescape(client.get(f"/proposals/{did}").get_data(as_text=True))
    assert 'data-flag="rollup"' in page
    assert (f"the best genus {genus_name} is not in the best family {sim.world.taxa[other].name}") in page
    assert f"in {sim.world.taxa[own_family].name}" in page  # each genus with its family
