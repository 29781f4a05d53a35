"""The review loop in the synthetic world, small: daemon -> scripted moderator -> `dataset from-reviews`
-> `train --init BUNDLE` -> `evaluate`: the new version's top-1 on the reviewed species rises.

Version 1 has seen photos of only two of the four species (its labels name all four), so it cannot
be right about the other two; the moderator's edits teach them.  Held-out observations (never served
to the daemon) measure both versions on the same photos.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import torch
from click.testing import CliRunner

from bot.classifier import Classifier, load_bundle
from bot.cli import main
from bot.cycle import run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.review_script import review_with_truth
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, make_world, write_image_folder, write_observation_manifest
from bot.store import Store
from bot.training.dataset import from_folder
from bot.training.evaluate import EvalOptions, evaluate
from tests.support.simconfig import sim_config

SPEC = WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=72,
                 photos_per_observation=(2, 3), photo_size=(64, 48), non_plant_fraction=0.0, seed=7)
HELD_OUT = 20


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _first_version(tmp: Path, species) -> Path:  # type: ignore[no-untyped-def]
    """Trained on folder photos of the first two species only; labels.csv lists all four."""
    images = write_image_folder(species, tmp / "images", per_species=12, seed=1, size=(64, 48), tags=False)
    data = from_folder(images, images / "taxonomy.csv", tmp / "data", test_fraction=0.0, seed=1)
    known = {sp.name for sp in species[:2]}
    with open(data.out / "train.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] in known]
    with open(tmp / "v1-train.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "path": str(data.out / r["path"])} for r in rows)
    _invoke("train", str(tmp / "v1-train.csv"), "--labels", str(data.out / "labels.csv"), "--out", str(tmp / "v1"),
            "--arch", "resnet18", "--input-size", "48", "--epochs", "3", "--batch-size", "8", "--workers", "0",
            "--device", "cpu", "--name", "loop", "--version", "1", "--no-progress")
    return tmp / "v1"


def test_moderators_reviews_teach_the_next_version(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    world, species = make_world(SPEC)
    v1 = _first_version(tmp_path, species)
    held_out = sorted(world.observations)[-HELD_OUT:]
    served = copy.deepcopy(world)
    for oid in held_out:
        del served.observations[oid]
    with SimServer(served) as sim:
        cfg = sim_config(tmp_path, sim, v1, extra='[decision]\ncutoff = 0.25\n[review]\nmoderators = ["moderator"]\n')
        cfg.posting.mode = "review"
        store = Store(cfg.database_path)
        platform = create_platform(cfg, dry_run=False)
        try:
            run_cycle(cfg, store, platform, Classifier(load_bundle(v1), threads=1), mode=RunMode.REVIEW)
            review = review_with_truth(store, world, reject_every=4)
        finally:
            platform.close()
            store.close()
        assert review.proposals >= 20 and review.actions.get("edit", 0) >= 5 and review.actions.get("reject")
        _invoke("--config", str(tmp_path / "config.toml"), "dataset", "from-reviews", "--no-progress",
                "--out", str(tmp_path / "reviews"))
    with open(tmp_path / "reviews" / "train.csv", newline="", encoding="utf-8") as fh:
        reviewed = {r["label"] for r in csv.DictReader(fh)}
    assert {sp.name for sp in species[2:]} <= reviewed  # the moderator taught the species v1 never saw
    out = _invoke("train", str(tmp_path / "reviews" / "train.csv"), "--init", str(v1), "--out", str(tmp_path / "v2"),
                  "--epochs", "8", "--batch-size", "8", "--lr", "0.001", "--workers", "0", "--device", "cpu",
                  "--no-progress")
    assert "4 labels" in out
    v2 = load_bundle(tmp_path / "v2")
    assert (v2.name, v2.version, v2.labels) == ("loop", "2", load_bundle(v1).labels)  # labels kept, in order
    manifest = write_observation_manifest(
        world, [sp for sp in species if sp.name in reviewed], held_out, tmp_path / "held-out")
    before = evaluate(EvalOptions(bundle=v1, manifest=manifest, out=tmp_path / "eval-v1", device="cpu",
                                  progress=False))
    after = evaluate(EvalOptions(bundle=tmp_path / "v2", manifest=manifest, out=tmp_path / "eval-v2", device="cpu",
                                 progress=False))
    print(f"\nreview loop: {review.proposals} proposals ({review.actions}); held-out top-1 on the reviewed "
          f"species {before['top1']:.2f} -> {after['top1']:.2f} ({before['observations']} observations)")
    assert before["observations"] == after["observations"] >= 10
    assert after["top1"] > before["top1"]
