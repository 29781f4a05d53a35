"""Live recalibration: what the community's outcomes say about the probabilities and the cutoffs.

Per model version and rank: precision by probability bin with Wilson intervals, how many outcomes
are still pending, and, once at least `min_outcomes` proposals of that rank are decided (confirmed
or refined = right, contradicted = wrong; pending and gone are not decided), the lowest cutoff at
which at least `min_outcomes` decided proposals remain and their precision reaches the target.
Live outcomes exist only above the cutoff that was in use, so the suggestion can confirm or raise a
cutoff, never lower it below what was used.  Nothing here changes a cutoff: `plantbot cutoffs apply`
does, after showing the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.stats import lowest_cutoff, wilson

N_BINS = 10
RIGHT = ("confirmed", "refined")
WRONG = ("contradicted",)
RANK_ORDER = ("species", "genus", "family")


def _bins(scores: list[tuple[float, bool]]) -> list[dict[str, Any]]:
    out = []
    for b in range(N_BINS):
        inside = [ok for s, ok in scores if min(int(s * N_BINS), N_BINS - 1) == b]
        if not inside:
            continue
        right = sum(inside)
        out.append({"low": b / N_BINS, "high": (b + 1) / N_BINS, "decided": len(inside),
                    "precision": right / len(inside), "interval": wilson(right, len(inside))})
    return out


def live_calibration(rows: Iterable[tuple[str, str, float, str, float]], target: float,
                     min_outcomes: int) -> list[dict[str, Any]]:
    """One entry per (model version, rank), from (version, rank, score, outcome, cutoff) rows."""
    groups: dict[tuple[str, str], list[tuple[float, str, float]]] = {}
    for version, rank, score, outcome, cutoff in rows:
        groups.setdefault((version, rank), []).append((score, outcome, cutoff))
    out = []
    for (version, rank), items in sorted(groups.items(), key=lambda kv: (
            kv[0][0], RANK_ORDER.index(kv[0][1]) if kv[0][1] in RANK_ORDER else 9)):
        decided = [(s, o in RIGHT) for s, o, _ in items if o in RIGHT + WRONG]
        right = sum(ok for _, ok in decided)
        entry: dict[str, Any] = {
            "model_version": version, "rank": rank, "outcomes": len(items), "decided": len(decided),
            "pending": sum(o == "pending" for _, o, _ in items), "right": right,
            "precision": right / len(decided) if decided else None, "interval": wilson(right, len(decided)),
            "cutoffs_used": sorted({c for _, _, c in items}), "bins": _bins(decided),
            "target_precision": target, "min_outcomes": min_outcomes,
        }
        if len(decided) < min_outcomes:
            entry["suggested_cutoff"] = None
            entry["reason"] = f"{len(decided)} decided outcomes, fewer than {min_outcomes}"
        else:
            found = lowest_cutoff([s for s, _ in decided], [ok for _, ok in decided], target, min_outcomes, 0.0)
            entry["suggested_cutoff"] = found["cutoff"]
            entry["suggested_precision"] = found["precision"]
            entry["suggested_interval"] = found.get("interval")
            entry["suggested_decided"] = found["decided"]
            if found["cutoff"] is None:
                entry["reason"] = found["reason"]
        out.append(entry)
    return out


def suggestions(entries: Iterable[dict[str, Any]], model_version: str) -> dict[str, float]:
    """The suggested cutoff per rank for one model version (ranks without one left out)."""
    return {e["rank"]: e["suggested_cutoff"] for e in entries
            if e["model_version"] == model_version and e["suggested_cutoff"] is not None}
