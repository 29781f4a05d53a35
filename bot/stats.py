"""Small statistics shared by calibration (held-out sets) and the audit (live outcomes).

Hand-written on purpose: the Wilson interval is six lines and the cutoff search a sorted scan; adding
scipy or statsmodels for them would be a heavy dependency for little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion (95% by default); None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def lowest_cutoff(scores: Sequence[float], right: Sequence[bool], target: float, min_decided: int,
                  floor: float) -> dict[str, Any]:
    """The lowest cutoff c >= floor whose proposals (score >= c) are right at least `target` of the
    time, among at least `min_decided` of them; candidates are the observed scores themselves."""
    pairs = sorted(zip(scores, right, strict=True), key=lambda p: -p[0])
    best: dict[str, Any] | None = None
    hits = 0
    for n, (score, ok) in enumerate(pairs, start=1):
        hits += ok
        last_of_tie = n == len(pairs) or pairs[n][0] < score
        if score < floor or not last_of_tie:
            continue
        if n >= min_decided and hits / n >= target:
            best = {"cutoff": float(score), "decided": n, "precision": hits / n, "interval": wilson(hits, n)}
    if best is None:
        total = sum(ok for _, ok in pairs)
        return {"cutoff": None, "decided": len(pairs), "precision": total / len(pairs) if pairs else None,
                "reason": (f"only {len(pairs)} decided observation(s), fewer than {min_decided}"
                           if len(pairs) < min_decided else f"no cutoff reaches {target:.2f} with "
                           f"{min_decided} or more decided observations")}
    return best
