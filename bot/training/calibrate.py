"""`plantbot calibrate`: a temperature and per-rank cutoffs, fitted on a held-out labelled set.

The bundle's network runs once on the set (logits kept); the temperature minimising the NLL of the
observation-averaged probabilities is fitted; then, with the calibrated probabilities and through the
daemon's own rule, the lowest cutoff per rank reaching the target precision is found.  All of it is
written into model.toml (the bundle's own, or a copy with --out), with the set's name, size and date.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.classifier import load_bundle
from bot.classifier.calibration import write_calibration
from bot.config import DecisionConfig
from bot.errors import UsageError
from bot.training import calibration, rules
from bot.training.evaluate import manifest_logits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrateOptions:
    bundle: Path
    manifest: Path
    out: Path | None = None  # None: calibrate the bundle in place
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    target: float = 0.9
    min_decided: int = 30
    device: str = "auto"
    batch_size: int = 64
    tencrop: bool = False
    dtype: str = "float32"  # the forward pass's precision: calibrate in the one the daemon uses
    progress: bool = True


def calibrate(opts: CalibrateOptions) -> dict[str, Any]:
    """Fits, writes, and returns what it found (numbers before and after, cutoffs and why)."""
    bundle = load_bundle(opts.bundle)
    if opts.out is not None and opts.out.exists() and any(opts.out.iterdir()):
        raise UsageError(f"--out {opts.out}: exists and is not empty")
    data = manifest_logits(bundle, opts.manifest, device=opts.device, batch_size=opts.batch_size,
                           tencrop=opts.tencrop, progress=opts.progress, title="calibrate", dtype=opts.dtype)
    group, ids = calibration.group_index(data.observation_ids)
    truth = np.zeros(len(ids), dtype=np.int64)
    truth[group] = data.truth
    before = calibration.observation_probs(data.logits, group, len(ids), None)
    temperature = calibration.fit_temperature(data.logits, group, truth)
    after = calibration.observation_probs(data.logits, group, len(ids), temperature)
    found = rules.cutoffs_on_set(data.logits, data.observation_ids, data.truth, temperature, bundle.labels,
                                 opts.decision, opts.target, opts.min_decided)
    result: dict[str, Any] = {
        "temperature": temperature, "observations": len(ids), "photos": len(group),
        "before": {"ece": calibration.ece(before, truth), "nll": calibration.nll(before, truth)},
        "after": {"ece": calibration.ece(after, truth), "nll": calibration.nll(after, truth)},
        "cutoffs": found,
    }
    target = opts.bundle if opts.out is None else opts.out
    if opts.out is not None:
        shutil.copytree(opts.bundle, opts.out, dirs_exist_ok=True)
    info = {"set": opts.manifest.name, "observations": len(ids), "photos": len(group),
            "date": dt.date.today().isoformat(), "nll_before": result["before"]["nll"],
            "nll_after": result["after"]["nll"], "ece_before": result["before"]["ece"],
            "ece_after": result["after"]["ece"]} | rules.cutoff_info(found, opts.decision)
    write_calibration(target, temperature=temperature, info=info, cutoffs=found["cutoffs"])
    load_bundle(target)  # what was written must load
    result["bundle"] = str(target)
    log.info("calibrated %s: T = %.4f, cutoffs %s", target, temperature, found["cutoffs"])
    return result
