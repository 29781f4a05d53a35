"""`plantbot demo`: the whole product on a synthetic plant world, offline, in a few minutes.

It generates a test world, trains a small model on photos of its species, evaluates it, serves the
world from the simulator with observations arriving in waves, runs the daemon for a few cycles in
review mode, and writes the audit report.  Everything lands in one folder the user can open.
The world is a test world: it says nothing about real plants.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.config import DecisionConfig, load_config
from bot.daemon import run_daemon
from bot.domain import PROPOSAL_KINDS
from bot.report import build_report
from bot.sim.model import World
from bot.sim.server import SimServer
from bot.sim.world import (
    SpeciesInfo,
    WorldSpec,
    make_world,
    write_flora_file,
    write_image_folder,
    write_place_manifest,
)
from bot.store import Store, records
from bot.texts import render_text
from bot.training.calibrate import CalibrateOptions, calibrate
from bot.training.dataset import ManifestRow, from_folder, read_csv, write_manifest
from bot.training.evaluate import EvalOptions, evaluate
from bot.training.lines import cutoff_lines, rule_lines
from bot.training.train import TrainOptions, train

log = logging.getLogger(__name__)

MODERATOR = "moderator"  # a user of the generated world; its password on the simulator is "password"
CLIENT_ID = "plantbot-demo"


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    families: int = 4
    genera_per_family: int = 2
    species_per_genus: int = 3
    photos_per_species: int = 60
    held_out: float = 0.4  # share of photos kept out of training: half calibrates, half tests
    min_decided: int = 15  # a small world: fewer decided observations per rank than a real one needs
    target_precision: float = 0.9
    observations: int = 240
    epochs: int = 20  # the cosine schedule's last epochs matter: 14 left species of a genus confused
    input_size: int = 64
    augment: str = "light"  # rendered photos already vary pose, scale, colour and background (see augment.py)
    waves: int = 3
    wave_seconds: float = 6.0
    port: int = 8765
    seed: int = 1
    places: int = 3  # geography: the evaluation is repeated in one place with and without its flora


def _free_port(preferred: int) -> int:
    """The preferred port when it is free (so the printed commands are stable), else any free one."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config_text(opts: DemoOptions, port: int, bundle_cutoffs: bool) -> str:
    out = opts.out.resolve()
    return f"""# Written by `plantbot demo`: PlantBot against the bundled simulator (start it with
#   plantbot sim --world {out / 'world'} --port {port}
# ). Review mode: every proposal waits for a moderator in `plantbot serve`.
[platform]
api_url = "http://127.0.0.1:{port}/v1"
site_url = "http://127.0.0.1:{port}"
contact = "demo@example.invalid"
requests_per_second = 5.0
requests_per_minute = 300
ratelimit_path = "ratelimit.sqlite3"
start = 0                # the demo world streams in from its first observation (a real install: "now")
quality_grade = "any"    # and shows every grade (a real install: "needs_id")

[model]
path = "model"
batch_size = 64

[decision]
cutoffs = "{'bundle' if bundle_cutoffs else 'config'}"  # "bundle": the per-rank cutoffs `plantbot calibrate` found
target_precision = {opts.target_precision}
min_decided = {opts.min_decided}

[posting]
mode = "review"

[review]
moderators = ["{MODERATOR}"]
oauth_client_id = "{CLIENT_ID}"
port = 8000

[store]
database = "plantbot.sqlite3"

[schedule]
interval_seconds = {max(1, int(opts.wave_seconds))}
"""


def run_demo(opts: DemoOptions, say: Callable[[str], None] = print) -> dict[str, object]:
    """Runs every step and returns what the closing summary printed (for tests)."""
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    spec = WorldSpec(families=opts.families, genera_per_family=opts.genera_per_family,
                     species_per_genus=opts.species_per_genus, observations=opts.observations,
                     photos_per_observation=(1, 3), photo_size=(320, 240), seed=opts.seed, places=opts.places)
    world, species = make_world(spec)
    say(f"1/7 world: {len(species)} species in {opts.families} families, {len(world.observations)} observations")
    images = write_image_folder(species, out / "images", per_species=opts.photos_per_species, seed=opts.seed + 1,
                                size=(96, 72))
    data = from_folder(images, images / "taxonomy.csv", out / "dataset", tags=images / "tags.csv",
                       test_fraction=opts.held_out, seed=opts.seed)
    calib, test = split_manifest(out / "dataset" / "test.csv", out / "dataset" / "calibration.csv")
    say(f"2/7 dataset: {data.train_photos} training photos; held out: {calib} observations to calibrate, "
        f"{test} to test")
    result = train(TrainOptions(manifest=out / "dataset" / "train.csv", labels=out / "dataset" / "labels.csv",
                                out=out / "model", arch="resnet18", epochs=opts.epochs, batch_size=32,
                                input_size=opts.input_size, augment=opts.augment, workers=0,
                                name="demo-resnet18", version="1",
                                device="cpu", seed=opts.seed))
    last = result.history[-1] if result.history else {}
    say(f"3/7 model: resnet18 at {opts.input_size} px, {opts.epochs} epochs, {opts.augment} augmentation "
        f"-> {out / 'model'} "
        f"(training accuracy in the last epoch {float(last.get('accuracy', 0.0)):.2f})")
    decision = DecisionConfig(target_precision=opts.target_precision, min_decided=opts.min_decided)
    cal = calibrate(CalibrateOptions(bundle=out / "model", manifest=out / "dataset" / "calibration.csv",
                                     decision=decision, target=opts.target_precision, min_decided=opts.min_decided,
                                     device="cpu", progress=False))
    say(f"4/7 calibration on {cal['observations']} held-out observations: temperature {cal['temperature']:.3f}, "
        f"NLL {cal['before']['nll']:.3f} -> {cal['after']['nll']:.3f}, "
        f"ECE {cal['before']['ece']:.3f} -> {cal['after']['ece']:.3f}")
    for line in cutoff_lines(cal["cutoffs"]):
        say("    " + line)
    bundle_cutoffs = bool(cal["cutoffs"]["cutoffs"])
    if bundle_cutoffs:
        decision = replace(decision, cutoffs="bundle")
    metrics = evaluate(EvalOptions(bundle=out / "model", manifest=out / "dataset" / "test.csv",
                                   out=out / "evaluation", device="cpu", progress=False, decision=decision))
    say(f"5/7 evaluation on the other held-out half: top-1 {metrics['top1']:.2f}, top-5 {metrics['top5']:.2f} "
        f"per observation (chance {1 / len(species):.2f}); photo top-1 {metrics['photo_top1']:.2f}")
    for line in rule_lines(metrics["rule"]):
        say("    " + line)
    if opts.places:
        metrics["flora_demo"] = _flora_evaluation(world, species, out, say)
    for i, obs in enumerate(sorted(world.observations.values(), key=lambda o: o.id)):
        obs.release_after_s = opts.wave_seconds * (i * opts.waves // len(world.observations))
    world.save(out / "world")
    port = _free_port(opts.port)
    (out / "config.toml").write_text(_config_text(opts, port, bundle_cutoffs), encoding="utf-8")
    cfg = load_config(out / "config.toml")
    with SimServer(world, port=port):
        say(f"6/7 simulator on http://127.0.0.1:{port}; daemon: {opts.waves} cycles in review mode, "
            f"observations arriving in {opts.waves} waves")
        run_daemon(cfg, max_cycles=opts.waves, install_signals=False)
    store = Store(cfg.database_path)
    try:
        report = build_report(store, out / "report", site_url=cfg.platform.site_url,
                              platform_hosts=cfg.platform_hosts, photo_hosts=cfg.allowed_photo_hosts,
                              target_precision=cfg.decision.target_precision,
                              min_outcomes=cfg.decision.live_min_outcomes)
        summary = _closing_summary(store, cfg, say)
        _cutoffs_used(store, cal["cutoffs"], say)
    finally:
        store.close()
    say(f"7/7 report: {out / 'report' / 'report.html'}")
    _where_to_look(out.resolve(), port, say)
    return {"metrics": metrics, "decisions": summary, "report": report, "calibration": cal}


def split_manifest(test: Path, calibration: Path) -> tuple[int, int]:
    """Moves every other held-out observation from `test` to `calibration` (whole observations, so the
    two sets share none); returns the observation counts (calibration, test)."""
    rows = [ManifestRow(r["path"], r["label"], int(r["observation_id"]), r.get("tag", ""))
            for r in read_csv(test, ("path", "label", "observation_id"), "manifest")]
    ids = list(dict.fromkeys(r.observation_id for r in rows))
    to_calibrate = set(ids[::2])
    write_manifest(calibration, [r for r in rows if r.observation_id in to_calibrate])
    write_manifest(test, [r for r in rows if r.observation_id not in to_calibrate])
    return len(to_calibrate), len(ids) - len(to_calibrate)


def _cutoffs_used(store: Store, found: dict[str, Any], say: Callable[[str], None]) -> None:
    """The cutoffs the daemon's decisions recorded, with the precision calibration promised for each."""
    with store.session() as s:
        used = records.used_cutoffs(s)
    say(f"\nCutoffs the daemon used (recorded with its decisions), aiming at precision "
        f"{found['target_precision']:.2f}:")
    for rank, cutoff, rule in used:
        promise = found.get(rank) or {}
        if promise.get("cutoff") is not None and abs(promise["cutoff"] - cutoff) < 1e-9:
            lo, hi = promise["interval"]
            note = (f"calibrated: {100 * promise['precision']:.1f}% right on {promise['decided']} held-out "
                    f"observations (95% CI {100 * lo:.1f}%-{100 * hi:.1f}%)")
        else:
            note = "the config's cutoff (calibration found no cutoff for this rank)"
        say(f"  {rank} {cutoff:.3f} [{rule}]: {note}")


def _flora_evaluation(world: World, species: list[SpeciesInfo], out: Path, say: Callable[[str], None]
                      ) -> dict[str, object]:
    """The model on one place's observations, with and without that place's flora (same cutoff)."""
    place = place_ids_of(world)[0]
    manifest = write_place_manifest(world, species, place, out / "place")
    flora = write_flora_file(species, place, out / "place" / "flora.csv")
    result = evaluate(EvalOptions(bundle=out / "model", manifest=manifest, out=out / "evaluation-place", device="cpu",
                                  progress=False, flora=flora))
    fl = result["flora"]

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.0f}%"

    say(f"   in {world.places[place].name} ({fl['observations']} observations, {fl['taxa']} of {len(species)} "
        f"species grow there), species precision / coverage at cutoff {fl['cutoff']:.2f}: "
        f"flora off {pct(fl['off']['species_precision'])} / {pct(fl['off']['species_coverage'])}, "
        f"on {pct(fl['on']['species_precision'])} / {pct(fl['on']['species_coverage'])}")
    return dict(fl)


def place_ids_of(world: World) -> list[int]:
    return sorted(p.id for p in world.places.values() if p.parent_id is not None)


def _closing_summary(store: Store, cfg: object, say: Callable[[str], None]) -> dict[str, int]:
    with store.session() as s:
        kinds = records.decision_counts(s)
        examples = records.first_decisions(s, PROPOSAL_KINDS)
        say("\nDecisions: " + ", ".join(f"{kinds.get(k, 0)} {label}" for k, label in (
            ("species", "species IDs"), ("genus", "genus comments"), ("family", "family comments"),
            ("abstain", "abstentions"), ("skip", "skipped"))))
        for kind in PROPOSAL_KINDS:
            example = examples.get(kind)
            if example is not None:
                text = render_text(example, cfg, reviewed_by=MODERATOR)  # type: ignore[arg-type]
                say(f"\n  a {kind} proposal on observation {example.observation_id} "
                    f"({example.taxon_name}, p={example.score:.2f}):\n    " + text.replace("\n", "\n    "))
    return dict(kinds)


def _where_to_look(out: Path, port: int, say: Callable[[str], None]) -> None:
    say(f"""
Where to look:
  evaluation (the paper's Figures 2 and 3): {out / 'evaluation' / 'index.html'}
  one place, with and without its flora:    {out / 'evaluation-place' / 'metrics.json'}
  audit report:                             {out / 'report' / 'report.html'}
  review UI: the proposals wait for a moderator. In two terminals:
    .venv/bin/plantbot sim --world {out / 'world'} --port {port}
    PLANTBOT_SECRET_KEY=demo .venv/bin/plantbot --config {out / 'config.toml'} serve
  then open http://127.0.0.1:8000 and sign in as "{MODERATOR}" / "password" (a simulator account).
This is a synthetic test world: the species, photos and accuracy say nothing about real plants.""")
