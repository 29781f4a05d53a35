"""`plantbot dataset from-reviews` on a store with known actions: exactly the expected rows.

Approved -> the proposed taxon; edited -> the moderator's taxon (a text-only edit keeps the proposal's);
an audited community taxon wins over both; rejected -> a "not this taxon" pair; taxa outside the
bundle's labels are counted, not trained on; each photo is fetched once, through the simulator.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from bot.classifier import build_model, read_labels, save_bundle
from bot.cli import main
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world
from bot.store import Store
from bot.store.models import DecisionRow, ObservationRow, OutcomeRow, PhotoRow, ReviewActionRow

T0 = datetime(2026, 3, 1, 9, 0)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_from_reviews_yields_exactly_the_expected_rows(tmp_path: Path) -> None:
    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=8,
                                          photos_per_observation=(1, 2), photo_size=(40, 30),
                                          non_plant_fraction=0.0, seed=6))
    labels = labels_for(species)
    bundle = save_bundle(tmp_path / "bundle", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    s1, s2, s3, s4 = (sp.taxon_id for sp in species)
    genus = species[0].genus_taxon_id
    obs = sorted(world.observations)
    # observation -> (decision kind, proposed taxon, actions [(action, edited taxon)], community taxon)
    plan = {
        obs[0]: ("species", s1, [("approve", None)], None),           # approved: s1
        obs[1]: ("species", s1, [("edit", s2)], None),                # edited: s2
        obs[2]: ("species", s1, [("approve", None)], s3),             # community wins: s3
        obs[3]: ("species", s4, [("reject", None)], None),            # a negative, no row
        obs[4]: ("genus", genus, [("approve", None)], None),          # a genus: not a label of the bundle
        obs[5]: ("species", s2, [("edit", None)], None),              # text-only edit: s2
        obs[6]: ("species", s3, [("skip", None)], None),              # skipped: nothing
        obs[7]: ("species", s3, [("approve", None)], 999_999),        # community taxon unknown to the bundle
    }
    with SimServer(world) as sim:
        cfg_path = tmp_path / "config.toml"
        cfg_path.write_text(f'[platform]\napi_url = "{sim.api_url}"\nsite_url = "{sim.url}"\n'
                            f'requests_per_second = 50.0\nrequests_per_minute = 3000\n'
                            f'ratelimit_path = "{tmp_path / "rl.sqlite3"}"\n[model]\npath = "{bundle.path}"\n'
                            f'[store]\ndatabase = "{tmp_path / "db.sqlite3"}"\n')
        store = Store(tmp_path / "db.sqlite3")
        with store.session() as s:
            for i, (oid, (kind, taxon, actions, community)) in enumerate(plan.items()):
                s.add(ObservationRow(id=oid, platform="sim", first_seen_at=T0, last_seen_at=T0))
                s.flush()
                for pos, pid in enumerate(world.observations[oid].photo_ids):
                    s.add(PhotoRow(observation_id=oid, photo_id=pid, position=pos, status="ok",
                                   url=f"{sim.url}/photos/{pid}/square.jpg?1"))
                d = DecisionRow(observation_id=oid, kind=kind, taxon_id=taxon, taxon_name=world.taxa[taxon].name,
                                model_name="tiny", model_version="1", status="proposed", created_at=T0)
                s.add(d)
                s.flush()
                for j, (action, edited) in enumerate(actions):
                    s.add(ReviewActionRow(decision_id=d.id, action=action, moderator="moderator", reason="no",
                                          edited_taxon_id=edited, at=T0 + timedelta(minutes=i, seconds=j)))
                if community is not None:
                    s.add(OutcomeRow(decision_id=d.id, checked_at=T0, community_taxon_id=community,
                                     post_state="current", outcome="contradicted", latest=True))
        store.close()
        args = ["--config", str(cfg_path), "dataset", "from-reviews", "--no-progress", "--out", str(tmp_path / "ds")]
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 0, again.output
        photo_gets = Counter(r.path for r in sim.requests if "/photos/" in r.path)
    expected_labels = {obs[0]: s1, obs[1]: s2, obs[2]: s3, obs[5]: s2}
    name = {lab.taxon_id: lab.name for lab in labels}
    expected_rows = sorted((f"photos/{pid}.jpg", name[t], str(oid)) for oid, t in expected_labels.items()
                           for pid in world.observations[oid].photo_ids)
    out = tmp_path / "ds"
    assert sorted((r["path"], r["label"], r["observation_id"]) for r in _rows(out / "train.csv")) == expected_rows
    assert all((out / path).is_file() for path, _, _ in expected_rows)
    assert len(photo_gets) == len(expected_rows) and max(photo_gets.values()) == 1  # each photo once, ever
    assert all(p.endswith("/medium.jpg") for p in photo_gets)
    sources = {int(r["observation_id"]): r["source"] for r in _rows(out / "sources.csv")}
    assert sources == {obs[0]: "approved", obs[1]: "edited", obs[2]: "community", obs[5]: "edited"}
    assert [(int(r["observation_id"]), int(r["taxon_id"])) for r in _rows(out / "negatives.csv")] == [(obs[3], s4)]
    assert [lab.name for lab in read_labels(out / "labels.csv")] == [lab.name for lab in labels]  # order kept
    summary = json.loads((out / "summary.json").read_text())
    assert summary["not_in_labels"] == {str(genus): 1, "999999": 1} and summary["negatives"] == 1
    assert summary["negatives_used_by_training"] is False
    assert "4 observations (1 approved, 1 community, 2 edited)" in first.output
    assert "2 observation(s) of 2 taxa" in first.output
