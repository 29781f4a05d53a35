"""`plantbot evaluate --predictions FILE`: the same metrics for predictions made by another system.

Pl@ntNet's API, iNaturalist's suggestions or a paper's published predictions come as top-k lists,
not as full probability vectors over our labels.  A dense [photos, labels] array would be 720 MB
for 15,000 photos over 6,000 labels, so everything here works on the sparse entries (photo, label,
probability) with numpy, and gives exactly what `metrics.summary` gives on the dense array in which
every missing entry is 0: ranks are counted (ties to the lower label index, as `metrics.ranking`),
never sorted per row.  FILE is JSON Lines, one photo a line:
`{"observation_id": ..., "label": "<name>", "top": [["<name>", probability], ...]}`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.domain import Label
from bot.errors import UsageError
from bot.training import metrics

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Sparse photo predictions: entry i says photo `row[i]` gave label `col[i]` probability `val[i]`."""

    row: np.ndarray
    col: np.ndarray
    val: np.ndarray
    truth: np.ndarray  # per photo: label index
    observation_ids: list[str]  # per photo
    k_min: int = 0
    k_max: int = 0
    unknown_labels: Counter[str] = field(default_factory=Counter)  # photos left out: label not in labels.csv
    unknown_names: Counter[str] = field(default_factory=Counter)  # top entries ignored: name not in labels.csv


def _line_error(path: Path, number: int, why: str) -> UsageError:
    return UsageError(f"{path}:{number}: {why}")


def _parse_top(path: Path, number: int, top: Any, index: dict[str, int],
               unknown: Counter[str]) -> list[tuple[int, float]]:
    if not isinstance(top, list) or not top:
        raise _line_error(path, number, '"top" must be a non-empty list of [name, probability]')
    out: list[tuple[int, float]] = []
    for item in top:
        if not (isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], int | float) and not isinstance(item[1], bool)):
            raise _line_error(path, number, f'"top" entry {item!r} is not [name, probability]')
        p = float(item[1])
        if not 0.0 <= p <= 1.0:
            raise _line_error(path, number, f"probability {p} of {item[0]!r} is not between 0 and 1")
        j = index.get(item[0].strip().lower())
        if j is None:
            unknown[item[0]] += 1
        elif p > 0:  # a 0 is what a missing entry means anyway
            out.append((j, p))
    return out


def read_predictions(path: Path, labels: Sequence[Label]) -> Predictions:
    """Reads FILE; a malformed line is a one-line error naming the line, nothing is guessed."""
    index = {lab.name.strip().lower(): lab.index for lab in labels}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    truth: list[int] = []
    obs: list[str] = []
    ks: list[int] = []
    unknown_labels: Counter[str] = Counter()
    unknown_names: Counter[str] = Counter()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise _line_error(path, number, f"not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("observation_id") in (None, "") \
                or not isinstance(doc.get("label"), str):
            raise _line_error(path, number, 'needs "observation_id", "label" (a name) and "top"')
        top = _parse_top(path, number, doc.get("top"), index, unknown_names)
        true = index.get(doc["label"].strip().lower())
        if true is None:
            unknown_labels[doc["label"]] += 1
            continue
        photo = len(truth)
        truth.append(true)
        obs.append(str(doc["observation_id"]))
        ks.append(len(doc["top"]))
        for j, p in top:
            rows.append(photo)
            cols.append(j)
            vals.append(p)
    return Predictions(np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                       np.asarray(vals, dtype=np.float64), np.asarray(truth, dtype=np.int64), obs,
                       min(ks, default=0), max(ks, default=0), unknown_labels, unknown_names)


# ---------------------------------------------------------------- sparse arithmetic


def summed(row: np.ndarray, col: np.ndarray, val: np.ndarray, n_cols: int) -> tuple[np.ndarray, ...]:
    """Entries with the same (row, col) added up (a name given twice, photos of one observation)."""
    if len(row) == 0:
        return row, col, val
    keys, inverse = np.unique(row * n_cols + col, return_inverse=True)
    return keys // n_cols, keys % n_cols, np.bincount(inverse, weights=val)


def best_per_row(row: np.ndarray, col: np.ndarray, val: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(best column, its value) per row; ties and empty rows go to the lowest column, as argmax does."""
    best = np.zeros(n_rows, dtype=np.int64)
    top = np.zeros(n_rows, dtype=np.float64)
    if len(row):
        order = np.lexsort((col, -val, row))
        r = row[order]
        first = order[np.r_[True, r[1:] != r[:-1]]]
        best[row[first]], top[row[first]] = col[first], val[first]
    return best, top


def true_rank(row: np.ndarray, col: np.ndarray, val: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row, how many labels rank above the true one (0: top-1) in the dense row that has 0 for
    every missing entry; equal values rank by lower label index first."""
    n_rows = len(truth)
    p_true = np.zeros(n_rows, dtype=np.float64)
    is_true = col == truth[row]
    p_true[row[is_true]] = val[is_true]
    t = truth[row]
    greater = np.bincount(row, weights=val > p_true[row], minlength=n_rows)
    tied_lower = np.bincount(row, weights=(val == p_true[row]) & (col < t), minlength=n_rows)
    nonzero_lower = np.bincount(row, weights=col < t, minlength=n_rows)
    missing = p_true == 0  # the true label is one of the zeros: zeros of lower index come first
    return (greater + tied_lower + np.where(missing, truth - nonzero_lower, 0)).astype(np.int64)


def _rolled(row: np.ndarray, col: np.ndarray, val: np.ndarray, labels: Sequence[Label],
            rank: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries summed per genus (family): rows, group index, probability; and each label's group."""
    names, member = metrics.rank_groups(labels, rank)
    g = member[col] if len(col) else col
    keep = g >= 0
    r, gcol, v = summed(row[keep], g[keep], val[keep], max(len(names), 1))
    return r, gcol, v, member


def _observations(p: Predictions, n_labels: int) -> tuple[np.ndarray, ...]:
    """Observation-level entries (mean over the observation's photos), truth and photo counts."""
    order: dict[str, int] = {}
    obs_of_photo = np.fromiter((order.setdefault(o, len(order)) for o in p.observation_ids), dtype=np.int64,
                               count=len(p.observation_ids))
    n_obs = len(order)
    n_photos = np.bincount(obs_of_photo, minlength=n_obs)
    truth = np.full(n_obs, -1, dtype=np.int64)
    truth[obs_of_photo] = p.truth
    if (truth[obs_of_photo] != p.truth).any():
        bad = list(order)[int(obs_of_photo[np.argmax(truth[obs_of_photo] != p.truth)])]
        raise UsageError(f"observation {bad} has photos with different labels")
    row, col, val = summed(obs_of_photo[p.row], p.col, p.val, n_labels)
    return row, col, val / n_photos[row], truth, n_photos


# ---------------------------------------------------------------- the metrics


def _rule(kinds_input: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], n: int,
          cutoff: float) -> dict[str, Any]:
    """metrics.rule_outcome (the model-only view) on the per-row best value and correctness of each rank."""
    undecided = np.ones(n, dtype=bool)
    out: dict[str, Any] = {"cutoff": cutoff}
    for kind in ("species", "genus", "family"):
        top, correct, available = kinds_input[kind]
        take = undecided & (top >= cutoff) & available
        out[kind] = {"count": int(take.sum()), "precision": metrics.mean_or_none(correct[take])}
        undecided &= ~take
    out["abstain"] = {"count": int(undecided.sum())}
    return out


def summary_from_predictions(p: Predictions, labels: Sequence[Label], cutoff: float,
                             targets: Sequence[float]) -> dict[str, Any]:
    """Every key `metrics.summary` writes, from sparse top-k predictions."""
    n_labels = len(labels)
    prow, pcol, pval = summed(p.row, p.col, p.val, n_labels)
    photo_rank = true_rank(prow, pcol, pval, p.truth)
    row, col, val, truth, n_photos = _observations(p, n_labels)
    n_obs = len(truth)
    rank = true_rank(row, col, val, truth)
    hit1, hit5 = rank < 1, rank < 5
    best, top = best_per_row(row, col, val, n_obs)
    per_kind: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
        "species": (top, best == truth, np.ones(n_obs, dtype=bool))}
    rank_top1: dict[str, float | None] = {}
    for level in ("genus", "family"):
        grow, gcol, gval, member = _rolled(row, col, val, labels, level)
        g_best, g_top = best_per_row(grow, gcol, gval, n_obs)
        true_group = member[truth] if n_obs else np.zeros(0, dtype=np.int64)
        has_groups = bool((member >= 0).any())
        per_kind[level] = (g_top, g_best == true_group, np.full(n_obs, has_groups))
        known = true_group >= 0
        rank_top1[level] = float(np.mean(g_best[known] == true_group[known])) if known.any() and has_groups \
            else None
    curve = metrics.curve_from_hits(top, hit1, hit5, n_photos)
    return {
        "photos": int(len(p.truth)),
        "observations": int(n_obs),
        "labels": n_labels,
        "top1": metrics.mean_or_none(hit1),
        "top5": metrics.mean_or_none(hit5),
        "photo_top1": metrics.mean_or_none(photo_rank < 1),
        "photo_top5": metrics.mean_or_none(photo_rank < 5),
        "genus_top1": rank_top1["genus"],
        "family_top1": rank_top1["family"],
        "chance_top1": 1.0 / n_labels if n_labels else None,
        "cutoff_curve": curve,
        "model_rule": _rule(per_kind, n_obs, cutoff),  # no bundle, no taxon mapping: no daemon `rule` here
        "target_cutoffs": metrics.target_cutoffs(curve, targets),
        "by_photos": metrics.by_photos(hit1, hit5, n_photos),
        "confusion": metrics.sparse_confusion(truth, best, labels),
    }


def context(p: Predictions, path: Path, labels_path: Path, n_labels: int) -> dict[str, Any]:
    """What metrics.json says about the input, with a note when the lists are shorter than the labels."""
    notes = []
    if p.k_min < n_labels:
        notes.append(f"the predictions give the top {p.k_min}-{p.k_max} of {n_labels} labels per photo: "
                     "missing labels count as probability 0, observation averages use what is given")
    if p.unknown_names:
        notes.append(f"{sum(p.unknown_names.values())} top entries name no label of {labels_path.name} "
                     f"(e.g. {next(iter(p.unknown_names))!r}); they were ignored")
    return {
        "model": {"name": path.stem, "version": "predictions", "arch": "external", "input_size": None},
        "predictions": str(path), "labels_file": str(labels_path), "top_k": {"min": p.k_min, "max": p.k_max},
        "photos_failed": 0, "photos_unknown_label": sum(p.unknown_labels.values()), "notes": notes,
    }


def evaluate_predictions(path: Path, labels_path: Path, out: Path, cutoff: float = 0.30,
                         targets: Sequence[float] = (0.8, 0.9)) -> dict[str, Any]:
    """Reads FILE and labels.csv, writes metrics.json, the figures and index.html into `out`."""
    from bot.classifier import read_labels
    from bot.training.plots import write_report

    labels = read_labels(labels_path)
    preds = read_predictions(path, labels)
    if preds.unknown_labels:
        log.warning("%d photo(s) left out: their label is not in %s (%s)", sum(preds.unknown_labels.values()),
                    labels_path, ", ".join(sorted(preds.unknown_labels)[:5]))
    if not len(preds.truth):
        raise UsageError(f"{path}: no photo with a label of {labels_path}")
    result = summary_from_predictions(preds, labels, cutoff, targets)
    result.update(context(preds, path, labels_path, len(labels)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_report(out, result, labels)
    return result
