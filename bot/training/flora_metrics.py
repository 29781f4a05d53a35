"""`evaluate --flora FILE`: the decision rule with and without the local flora, on the same cutoff.

The flora is applied with `bot.flora.apply_flora`, the very function the daemon applies before its
rule, observation by observation; the rule's outcome is then measured as `metrics.rule_outcome` does.
Reported per variant (off, on, on and renormalised): species precision and species coverage (the
share of observations that get a species proposal), and the whole rule outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from bot.domain import Label
from bot.flora import apply_flora
from bot.training.metrics import mean_or_none, rule_outcome, topk_hits


def weighted_probs(probs: np.ndarray, labels: Sequence[Label], taxon_ids: Collection[int], weight: float,
                   renormalise: bool) -> np.ndarray:
    rows = [apply_flora(tuple(float(p) for p in row), labels, taxon_ids, weight=weight,
                        renormalise=renormalise).probs for row in np.asarray(probs, dtype=np.float64)]
    return np.asarray(rows, dtype=np.float64).reshape(np.shape(probs))


def _variant(probs: np.ndarray, truth: np.ndarray, labels: Sequence[Label], cutoff: float) -> dict[str, Any]:
    rule = rule_outcome(probs, truth, labels, cutoff)
    n = len(truth)
    return {
        "species_precision": rule["species"]["precision"],
        "species_coverage": rule["species"]["count"] / n if n else None,
        "top1": mean_or_none(topk_hits(probs, truth, 1)),
        "rule": rule,
    }


def flora_comparison(probs: np.ndarray, truth: np.ndarray, labels: Sequence[Label], cutoff: float,
                     taxon_ids: Collection[int], weight: float, source: str) -> dict[str, Any]:
    """Observation-level probabilities and truth in, the three variants out."""
    truth = np.asarray(truth, dtype=np.int64)
    outside = [lab.taxon_id is not None and lab.taxon_id not in taxon_ids for lab in labels]
    return {
        "source": source,
        "taxa": len(taxon_ids),
        "weight": weight,
        "cutoff": cutoff,
        "labels_outside": int(sum(outside)),
        "observations": int(len(truth)),
        "observations_outside": int(sum(outside[t] for t in truth)),  # true species not on the list
        "off": _variant(np.asarray(probs, dtype=np.float64), truth, labels, cutoff),
        "on": _variant(weighted_probs(probs, labels, taxon_ids, weight, False), truth, labels, cutoff),
        "renormalised": _variant(weighted_probs(probs, labels, taxon_ids, weight, True), truth, labels, cutoff),
    }
