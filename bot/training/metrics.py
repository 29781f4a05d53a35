"""The evaluation's numbers as pure functions over numpy arrays.

Kept free of torch, files and plotting so a test can feed hand-made probabilities and check every
value exactly.  `probs` is always [n, n_labels] (rows need not be normalised), `truth` the true label
index of each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bot.config import FALLBACK_RULES, DecisionConfig
from bot.domain import Label
from bot.training import rules

CUTOFFS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(20))  # 0.00 .. 0.95
PHOTO_GROUPS: tuple[str | int, ...] = ("all", 1, 2, 3, "4+")


def ranking(probs: np.ndarray) -> np.ndarray:
    """Label indices best first; ties go to the lower index (as the decision rule does)."""
    return np.argsort(-np.asarray(probs, dtype=np.float64), axis=1, kind="stable")


def topk_hits(probs: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per row: is the true label among the k most probable?"""
    if len(truth) == 0:
        return np.zeros(0, dtype=bool)
    top = ranking(probs)[:, :k]
    return np.asarray((top == np.asarray(truth)[:, None]).any(axis=1))


def mean_or_none(hits: np.ndarray) -> float | None:
    return float(np.mean(hits)) if len(hits) else None


def average_by_observation(
    photo_probs: np.ndarray, photo_truth: Sequence[int] | np.ndarray, observation_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Probabilities averaged over each observation's photos (the bot's own rule).

    Returns (probs [n_obs, n_labels], truth [n_obs], n_photos [n_obs], observation ids) in order of
    first appearance.  Photos of one observation with different labels are an error in the manifest.
    """
    order: dict[str, int] = {}
    for oid in observation_ids:
        order.setdefault(oid, len(order))
    n_obs, n_labels = len(order), photo_probs.shape[1] if photo_probs.ndim == 2 else 0
    sums = np.zeros((n_obs, n_labels), dtype=np.float64)
    counts = np.zeros(n_obs, dtype=np.int64)
    truth = np.full(n_obs, -1, dtype=np.int64)
    for row, (oid, label) in enumerate(zip(observation_ids, photo_truth, strict=True)):
        j = order[oid]
        if truth[j] not in (-1, label):
            raise ValueError(f"observation {oid} has photos with different labels")
        truth[j] = label
        sums[j] += photo_probs[row]
        counts[j] += 1
    return sums / np.maximum(counts, 1)[:, None], truth, counts, list(order)


def rank_groups(labels: Sequence[Label], rank: str) -> tuple[list[str], np.ndarray]:
    """Names of the genera (or families), sorted, and each label's group index (-1: none)."""
    names_per_label = [(lab.genus if rank == "genus" else lab.family) or "" for lab in labels]
    names = sorted({n for n in names_per_label if n})
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index.get(n, -1) for n in names_per_label], dtype=np.int64)


def rolled_up(probs: np.ndarray, labels: Sequence[Label], rank: str) -> tuple[np.ndarray, np.ndarray]:
    """Summed probability per genus/family [n, n_groups] and each label's group index."""
    names, member = rank_groups(labels, rank)
    matrix = np.zeros((len(labels), len(names)), dtype=np.float64)
    for i, g in enumerate(member):
        if g >= 0:
            matrix[i, g] = 1.0
    return np.asarray(probs, dtype=np.float64) @ matrix, member


def rank_top1(probs: np.ndarray, truth: np.ndarray, labels: Sequence[Label], rank: str) -> float | None:
    """Is the best summed genus (family) the true one? Rows whose label has no such rank are left out."""
    group_probs, member = rolled_up(probs, labels, rank)
    true_group = member[np.asarray(truth, dtype=np.int64)] if len(truth) else np.zeros(0, dtype=np.int64)
    known = true_group >= 0
    if not known.any() or group_probs.shape[1] == 0:
        return None
    best = np.argmax(group_probs[known], axis=1)
    return float(np.mean(best == true_group[known]))


def _group_mask(n_photos: np.ndarray, group: str | int) -> np.ndarray:
    if group == "all":
        return np.ones(len(n_photos), dtype=bool)
    if group == "4+":
        return np.asarray(n_photos >= 4)
    return np.asarray(n_photos == group)


def cutoff_curve(
    probs: np.ndarray, truth: np.ndarray, n_photos: np.ndarray, cutoffs: Sequence[float] = CUTOFFS
) -> list[dict[str, Any]]:
    """Figure 2: for each photo-count group and cutoff, accuracy over the observations kept
    (top probability >= cutoff) and the fraction discarded.  Empty groups give nulls."""
    top_prob = np.max(probs, axis=1) if len(probs) else np.zeros(0)
    return curve_from_hits(top_prob, topk_hits(probs, truth, 1), topk_hits(probs, truth, 5), n_photos, cutoffs)


def curve_from_hits(top_prob: np.ndarray, hit1: np.ndarray, hit5: np.ndarray, n_photos: np.ndarray,
                    cutoffs: Sequence[float] = CUTOFFS) -> list[dict[str, Any]]:
    """The cutoff curve from per-observation top probability and top-1/top-5 hits (any input path)."""
    curve: list[dict[str, Any]] = []
    for group in PHOTO_GROUPS:
        in_group = _group_mask(np.asarray(n_photos), group)
        total = int(in_group.sum())
        for c in cutoffs:
            kept = in_group & (top_prob >= c)
            n_kept = int(kept.sum())
            curve.append({
                "n_photos": group, "cutoff": c,
                "top1": mean_or_none(hit1[kept]), "top5": mean_or_none(hit5[kept]),
                "discarded": (total - n_kept) / total if total else None,
                "observations": total, "kept": n_kept,
            })
    return curve


def rule_outcome(probs: np.ndarray, truth: np.ndarray, labels: Sequence[Label], cutoff: float) -> dict[str, Any]:
    """The model-only view of the rule (`model_rule` in metrics.json): species if the best species
    clears `cutoff`, else the best genus (summed), else the best family, else abstain.

    The model is judged here, not the taxon mapping: a label without a platform taxon id still counts.
    What the daemon would do is `rules.rule_outcome` (the `rule` key).
    """
    truth = np.asarray(truth, dtype=np.int64)
    n = len(truth)
    kinds = np.full(n, "abstain", dtype=object)
    correct = np.zeros(n, dtype=bool)
    undecided = np.ones(n, dtype=bool)
    if n:
        best = ranking(probs)[:, 0]
        top = np.asarray(probs, dtype=np.float64)[np.arange(n), best]
        take = undecided & (top >= cutoff)
        kinds[take], correct[take] = "species", (best == truth)[take]
        undecided &= ~take
        for rank in ("genus", "family"):
            group_probs, member = rolled_up(probs, labels, rank)
            if group_probs.shape[1] == 0:
                continue
            g_best = np.argmax(group_probs, axis=1)
            take = undecided & (group_probs[np.arange(n), g_best] >= cutoff)
            kinds[take], correct[take] = rank, (g_best == member[truth])[take]
            undecided &= ~take
    out: dict[str, Any] = {"cutoff": cutoff}
    for kind in ("species", "genus", "family"):
        mask = kinds == kind
        out[kind] = {"count": int(mask.sum()), "precision": mean_or_none(correct[mask])}
    out["abstain"] = {"count": int((kinds == "abstain").sum())}
    return out


def target_cutoffs(curve: Sequence[dict[str, Any]], targets: Sequence[float]) -> list[dict[str, Any]]:
    """The lowest cutoff whose species top-1 over kept observations (all photo counts) reaches each
    target precision, with what it costs in discarded observations; null where none does."""
    rows = [r for r in curve if r["n_photos"] == "all"]
    out = []
    for target in targets:
        hit = next((r for r in rows if r["top1"] is not None and r["top1"] >= target), None)
        out.append({
            "precision": target,
            "cutoff": hit["cutoff"] if hit else None,
            "top1": hit["top1"] if hit else None,
            "discarded": hit["discarded"] if hit else None,
        })
    return out


def taxonomic_order(labels: Sequence[Label]) -> list[int]:
    """Label indices ordered by family, then genus, then name (Figure 3's axes)."""
    return sorted(range(len(labels)), key=lambda i: (labels[i].family, labels[i].genus, labels[i].name))


def by_photos(hit1: np.ndarray, hit5: np.ndarray, n_photos: np.ndarray) -> list[dict[str, Any]]:
    """Top-1/top-5 per number of photos in the observation (what Figure 2 shows at cutoff 0)."""
    out = []
    for group in PHOTO_GROUPS:
        mask = _group_mask(np.asarray(n_photos), group)
        out.append({"n_photos": group, "observations": int(mask.sum()), "top1": mean_or_none(hit1[mask]),
                    "top5": mean_or_none(hit5[mask])})
    return out


def boundaries(labels: Sequence[Label], order: Sequence[int], rank: str) -> list[int]:
    """Positions k in `order` where a new family (genus) starts, k >= 1: the lines Figure 3 draws."""
    names = [(labels[i].family if rank == "family" else (labels[i].family, labels[i].genus)) for i in order]
    return [k for k in range(1, len(names)) if names[k] != names[k - 1]]


def sparse_confusion(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[Label]) -> dict[str, Any]:
    """The confusion matrix as metrics.json keeps it: non-zero cells [true, predicted, count] by label
    index, the taxonomic order of the plot's axes and where its family and genus blocks start."""
    truth = np.asarray(truth, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    n = max(len(labels), 1)
    keys, counts = np.unique(truth * n + predicted, return_counts=True)
    order = taxonomic_order(labels)
    return {
        "labels": len(labels),
        "cells": [[int(k // n), int(k % n), int(c)] for k, c in zip(keys, counts, strict=True)],
        "order": order,
        "family_starts": boundaries(labels, order, "family"),
        "genus_starts": boundaries(labels, order, "genus"),
    }


def confusion(truth: np.ndarray, predicted: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts [true, predicted]."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def summary(
    photo_probs: np.ndarray,
    photo_truth: np.ndarray,
    observation_ids: Sequence[str],
    labels: Sequence[Label],
    cutoff: float,
    targets: Sequence[float],
    decision: DecisionConfig | None = None,
) -> dict[str, Any]:
    """Every key of metrics.json from photo-level probabilities.

    `rule` is the daemon's own rule with `decision` (default: one `cutoff` for every rank);
    `fallbacks` the same rule with each fallback; `model_rule` the model-only view at `cutoff`.
    """
    decision = decision or DecisionConfig(cutoff=cutoff)
    photo_truth = np.asarray(photo_truth, dtype=np.int64)
    probs, truth, n_photos, _ = average_by_observation(photo_probs, photo_truth, observation_ids)
    hit1, hit5 = topk_hits(probs, truth, 1), topk_hits(probs, truth, 5)
    top_prob = np.max(probs, axis=1) if len(probs) else np.zeros(0)
    curve = curve_from_hits(top_prob, hit1, hit5, n_photos)
    best = ranking(probs)[:, 0] if len(probs) else np.zeros(0, dtype=np.int64)
    return {
        "photos": int(len(photo_truth)),
        "observations": int(len(truth)),
        "labels": len(labels),
        "top1": mean_or_none(hit1),
        "top5": mean_or_none(hit5),
        "photo_top1": mean_or_none(topk_hits(photo_probs, photo_truth, 1)),
        "photo_top5": mean_or_none(topk_hits(photo_probs, photo_truth, 5)),
        "genus_top1": rank_top1(probs, truth, labels, "genus"),
        "family_top1": rank_top1(probs, truth, labels, "family"),
        "chance_top1": 1.0 / len(labels) if labels else None,
        "cutoff_curve": curve,
        "rule": rules.rule_outcome(probs, truth, n_photos, labels, decision),
        "fallbacks": {f: rules.rule_outcome(probs, truth, n_photos, labels, replace(decision, fallback=f))
                      for f in FALLBACK_RULES},
        "model_rule": rule_outcome(probs, truth, labels, cutoff),
        "target_cutoffs": target_cutoffs(curve, targets),
        "by_photos": by_photos(hit1, hit5, n_photos),
        "confusion": sparse_confusion(truth, best, labels),
    }
