"""The daemon's decision rule applied to a labelled set: counts, precision, and cutoffs for a target.

Every observation goes through `bot.decide.decide` exactly as the daemon calls it (a plant
observation with no identification yet), so `evaluate` reports what the bot would actually propose
with this bundle and config: a label without a platform taxon id is never proposed here either.
A proposal is right when its taxon id is the true label's id at that rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bot.config import DecisionConfig
from bot.decide import decide, rule_name
from bot.domain import PLANTAE, RANKS, Decision, Label, Observation, ObservationPrediction, Photo, User
from bot.stats import lowest_cutoff, wilson
from bot.training import calibration

_EVALUATOR = User(0, "evaluation")
_OFF = 2.0  # a cutoff no probability reaches: switches a rank off


def decide_all(probs: np.ndarray, n_photos: Sequence[int] | np.ndarray, labels: Sequence[Label],
               cfg: DecisionConfig) -> list[Decision]:
    """The daemon's decision for each row of observation-averaged probabilities."""
    out = []
    for i, row in enumerate(np.asarray(probs, dtype=np.float64)):
        obs = Observation(id=i, user=_EVALUATOR, photos=(Photo(i, ""),), iconic_taxon_name=PLANTAE)
        pred = ObservationPrediction(i, tuple(float(p) for p in row), max(1, int(n_photos[i])))
        out.append(decide(pred, labels, obs, cfg))
    return out


def is_right(decision: Decision, label: Label) -> bool:
    """The proposed taxon is the true label's taxon at the decision's rank."""
    truth = {"species": label.taxon_id, "genus": label.genus_taxon_id, "family": label.family_taxon_id}
    return decision.taxon_id is not None and truth.get(decision.kind.value) == decision.taxon_id


def outcome(decisions: Sequence[Decision], truth: Sequence[int] | np.ndarray, labels: Sequence[Label],
            cfg: DecisionConfig) -> dict[str, Any]:
    """Count, precision and its Wilson interval per proposed rank, and abstentions."""
    out: dict[str, Any] = {"rule": rule_name(cfg), "cutoffs": {r: cfg.cutoff_for(r) for r in RANKS}}
    if cfg.fallback == "common-ancestor":
        out["ancestor_threshold"] = cfg.ancestor_threshold
    for rank in RANKS:
        picked = [d for d, t in zip(decisions, truth, strict=True) if d.kind.value == rank]
        right = sum(is_right(d, labels[int(t)]) for d, t in zip(decisions, truth, strict=True)
                    if d.kind.value == rank)
        out[rank] = {"count": len(picked), "precision": right / len(picked) if picked else None,
                     "interval": wilson(right, len(picked))}
    out["abstain"] = {"count": sum(d.kind.value == "abstain" for d in decisions)}
    return out


def rule_outcome(probs: np.ndarray, truth: np.ndarray, n_photos: np.ndarray, labels: Sequence[Label],
                 cfg: DecisionConfig) -> dict[str, Any]:
    return outcome(decide_all(probs, n_photos, labels, cfg), truth, labels, cfg)


def target_cutoffs(probs: np.ndarray, truth: np.ndarray, n_photos: np.ndarray, labels: Sequence[Label],
                   cfg: DecisionConfig, target: float, min_decided: int, floor: float = 0.05) -> dict[str, Any]:
    """Per rank, in the rule's order, the lowest cutoff reaching `target` through the real rule.

    The species cutoff is found with every fallback off; each fallback rank then with the ranks
    before it at their chosen cutoffs and the ones after it off.  A rank whose cutoff only matters
    through the score it is compared with (summed fallback) is exact this way: lowering its cutoff
    to c adds exactly the observations whose score is >= c.  A rank with no cutoff found keeps the
    config's (reported with the reason).  The common-ancestor fallback has its own threshold and is
    not tuned here.
    """
    ranks = ["species"] + (list(cfg.fallback_ranks) if cfg.fallback == "summed" else [])
    chosen: dict[str, float] = {}
    report: dict[str, Any] = {"target_precision": target, "min_decided": min_decided}
    for i, rank in enumerate(ranks):
        values = {r: cfg.cutoff_for(r) for r in RANKS} | chosen | {rank: 1e-9}
        values |= {r: _OFF for r in ranks[i + 1:]}
        trial = replace(cfg, cutoffs="config", species_cutoff=values["species"], genus_cutoff=values["genus"],
                        family_cutoff=values["family"],
                        ancestor_threshold=_OFF if cfg.fallback == "common-ancestor" else cfg.ancestor_threshold)
        decided = [(d, t) for d, t in zip(decide_all(probs, n_photos, labels, trial), truth, strict=True)
                   if d.kind.value == rank]
        found = lowest_cutoff([d.score for d, _ in decided], [is_right(d, labels[int(t)]) for d, t in decided],
                              target, min_decided, floor)
        report[rank] = found
        if found["cutoff"] is not None:
            chosen[rank] = found["cutoff"]
    report["cutoffs"] = chosen
    return report


def cutoffs_on_set(photo_logits: np.ndarray, observation_ids: Sequence[str], photo_truth: np.ndarray,
                   temperature: float | None, labels: Sequence[Label], cfg: DecisionConfig, target: float,
                   min_decided: int) -> dict[str, Any]:
    """The one computation behind `calibrate` and `evaluate --write-cutoffs`: the set's photos averaged
    per observation at `temperature` (as the daemon does), then `target_cutoffs` through the real rule.

    `cfg` is the config's rule; its own cutoffs (not a bundle's) are what a rank without one keeps.
    """
    group, ids = calibration.group_index(observation_ids)
    truth = np.zeros(len(ids), dtype=np.int64)
    truth[group] = photo_truth
    probs = calibration.observation_probs(photo_logits, group, len(ids), temperature)
    n_photos = np.bincount(group, minlength=len(ids))
    return target_cutoffs(probs, truth, n_photos, labels, replace(cfg, cutoffs="config"), target, min_decided)


def cutoff_info(found: dict[str, Any], cfg: DecisionConfig) -> dict[str, Any]:
    """What model.toml's [calibration] says about the cutoffs: the target, the minimum count, the rule
    and the precision each stored cutoff reached on the set."""
    info: dict[str, Any] = {"target_precision": found["target_precision"], "min_decided": found["min_decided"],
                            "rule": rule_name(replace(cfg, cutoffs="config"))}
    return info | {f"{rank}_precision": found[rank]["precision"] for rank in found["cutoffs"]}
