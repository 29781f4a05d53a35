"""`plantbot evaluate`: how good a bundle is, measured the way the bot will use it.

Photos go through the bot's own Classifier (same decoding, preprocessing and batching as the
daemon), probabilities are averaged per observation, and `metrics.py` turns them into the numbers
of metrics.json; `plots.py` draws the paper's Figures 2 and 3 and the index.html page.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot.classifier import Classifier, ModelBundle, load_bundle, photo_probabilities
from bot.classifier.calibration import write_cutoffs
from bot.config import DecisionConfig
from bot.decide import with_bundle_cutoffs
from bot.domain import Label
from bot.errors import UsageError
from bot.flora import read_flora_file
from bot.training import calibration, metrics, rules
from bot.training.data import manifest_photos
from bot.training.flora_metrics import flora_comparison
from bot.training.plots import write_report

log = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    bundle: Path
    manifest: Path
    out: Path
    tencrop: bool = False
    cutoff: float = 0.30
    targets: Sequence[float] = field(default_factory=lambda: (0.8, 0.9))
    device: str = "auto"
    batch_size: int = 64
    dtype: str = "float32"  # or auto, bfloat16, float16: check a bundle in the precision the daemon will use
    progress: bool = True
    flora: Path | None = None  # a flora file: the rule is also measured with it (see flora_metrics)
    flora_weight: float = 0.0
    decision: DecisionConfig | None = None  # the config's rule settings; None: one `cutoff` for all ranks
    write_cutoffs: bool = False  # find per-rank cutoffs on this set (as `calibrate` does) and store them


@dataclass
class LabelledLogits:
    """A manifest run through the bundle: one row per photo that loaded."""

    logits: np.ndarray  # [photos, crops, labels]
    truth: np.ndarray  # [photos] label index
    observation_ids: list[str]
    photos_failed: int
    unknown: int
    dtype: str = "float32"  # the forward pass's precision


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return b""  # the classifier records it as a failed photo


def predict_paths(classifier: Classifier, paths: Sequence[Path], progress: bool = True,
                  title: str = "evaluate") -> np.ndarray:
    """[n, crops, n_labels] photo logits; NaN for photos that cannot be read or decoded."""
    chunk = max(64, classifier.batch_size * 4)
    out = np.full((len(paths), classifier.crops, classifier.bundle.num_classes), np.nan)
    with Progress(TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not progress) as bar:
        task = bar.add_task("photos", total=len(paths))
        for start in range(0, len(paths), chunk):
            batch = [_read(p) for p in paths[start:start + chunk]]
            out[start:start + len(batch)] = classifier.predict_photo_logits(batch)
            bar.update(task, advance=len(batch))
    return out


def manifest_logits(bundle: ModelBundle, manifest: Path, *, device: str, batch_size: int, tencrop: bool,
                    progress: bool, title: str = "evaluate", dtype: str = "float32") -> LabelledLogits:
    """Runs the bundle's network on the manifest's photos (those whose label the bundle has)."""
    photos = manifest_photos(manifest, bundle.labels)
    if photos.unknown_labels:
        log.warning("%d photo(s) left out: their label is not in the bundle (%s)",
                    sum(photos.unknown_labels.values()), ", ".join(sorted(photos.unknown_labels)[:5]))
    if not photos.paths:
        raise UsageError(f"manifest {manifest}: no photo with a label of the bundle")
    classifier = Classifier(bundle, device=device, batch_size=batch_size, tencrop=tencrop, dtype=dtype)
    logits = predict_paths(classifier, photos.paths, progress, title)
    ok = ~np.isnan(logits).any(axis=(1, 2))
    if not ok.any():
        raise UsageError(f"manifest {manifest}: none of its {len(ok)} photos could be read")
    return LabelledLogits(logits=logits[ok], truth=np.asarray(photos.targets, dtype=np.int64)[ok],
                          observation_ids=[o for o, keep in zip(photos.observation_ids, ok, strict=True) if keep],
                          photos_failed=int((~ok).sum()), unknown=sum(photos.unknown_labels.values()),
                          dtype=classifier.dtype_name)


def evaluate(opts: EvalOptions) -> dict[str, Any]:
    """Runs the bundle on the manifest and writes metrics.json, the PNG figures and index.html.

    Probabilities are the daemon's: softmax(logits / the bundle's temperature); `rule` is the
    daemon's rule with the config's settings (and the bundle's cutoffs under `cutoffs = "bundle"`).
    """
    bundle = load_bundle(opts.bundle)
    data = manifest_logits(bundle, opts.manifest, device=opts.device, batch_size=opts.batch_size,
                           tencrop=opts.tencrop, progress=opts.progress, dtype=opts.dtype)
    config = opts.decision or DecisionConfig(cutoff=opts.cutoff)
    found = _write_cutoffs(opts, bundle, data, config) if opts.write_cutoffs else None
    if found is not None:
        bundle = load_bundle(opts.bundle)  # the rule below then runs with what was just stored
    decision = with_bundle_cutoffs(config, bundle.cutoffs)
    probs = photo_probabilities(data.logits, bundle.temperature)
    result = metrics.summary(probs, data.truth, data.observation_ids, bundle.labels, opts.cutoff, opts.targets,
                             decision)
    result["calibration"] = calibration_report(data, bundle.temperature)
    result.update(_context(bundle, opts, photos_failed=data.photos_failed, unknown=data.unknown))
    result["dtype"] = data.dtype
    if found is not None:
        result["cutoffs_written"] = found
    if opts.flora is not None:
        obs_probs, obs_truth, _, _ = metrics.average_by_observation(probs, data.truth, data.observation_ids)
        result["flora"] = flora_comparison(obs_probs, obs_truth, bundle.labels, opts.cutoff,
                                           set(read_flora_file(opts.flora)), opts.flora_weight, str(opts.flora))
    write_outputs(opts.out, result, bundle.labels)
    return result


def _write_cutoffs(opts: EvalOptions, bundle: ModelBundle, data: LabelledLogits,
                   config: DecisionConfig) -> dict[str, Any]:
    """`--write-cutoffs`: calibrate's own cutoff search (`rules.cutoffs_on_set`) on this set at the
    bundle's temperature, with the config's target and minimum count; stored in the bundle's model.toml
    (its temperature untouched).  The set must be held out from training, like calibrate's."""
    found = rules.cutoffs_on_set(data.logits, data.observation_ids, data.truth, bundle.temperature, bundle.labels,
                                 config, config.target_precision, config.min_decided)
    info = rules.cutoff_info(found, config) | {
        "cutoffs_set": opts.manifest.name, "cutoffs_observations": len(set(data.observation_ids)),
        "cutoffs_date": dt.date.today().isoformat()}
    write_cutoffs(opts.bundle, info=info, cutoffs=found["cutoffs"])
    log.info("cutoffs written to %s: %s", opts.bundle / "model.toml", found["cutoffs"])
    return found


def calibration_report(data: LabelledLogits, temperature: float | None) -> dict[str, Any]:
    """ECE (15 bins), NLL and the reliability diagram's bins, without and with the bundle's temperature."""
    group, ids = calibration.group_index(data.observation_ids)
    truth = np.zeros(len(ids), dtype=np.int64)
    truth[group] = data.truth
    plain = calibration.observation_probs(data.logits, group, len(ids), None)
    out: dict[str, Any] = {"temperature": temperature, "uncalibrated": calibration.calibration_numbers(plain, truth)}
    if temperature is not None:
        scaled = calibration.observation_probs(data.logits, group, len(ids), temperature)
        out["calibrated"] = calibration.calibration_numbers(scaled, truth)
    return out


def _context(bundle: ModelBundle, opts: EvalOptions, photos_failed: int, unknown: int) -> dict[str, Any]:
    return {
        "model": {"name": bundle.name, "version": bundle.version, "arch": bundle.arch,
                  "input_size": bundle.input_size, "temperature": bundle.temperature, "cutoffs": bundle.cutoffs},
        "manifest": str(opts.manifest),
        "tencrop": opts.tencrop,
        "photos_failed": photos_failed,
        "photos_unknown_label": unknown,
    }


def write_outputs(out: Path, result: dict[str, Any], labels: Sequence[Label]) -> None:
    """metrics.json, the figures and index.html: the figures are drawn from what metrics.json holds."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_report(out, result, labels)
    log.info("evaluation written to %s", out)
