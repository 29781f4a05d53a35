"""The precision guard of `plantbot bench`: does the chosen dtype decide as float32 does?

The same observations go through a float32 classifier and one in the chosen dtype; the rule of
`bot.decide` is applied to both at the configured cutoff. A decision that flips is only excusable
when one of the probabilities the rule compares (best species, best genus, best family) lies within
`NEAR` of the cutoff in either run: there a difference in the third decimal decides either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bot.config import DecisionConfig
from bot.decide import decide, roll_up
from bot.domain import Label, Observation, ObservationPrediction, Photo, User

NEAR = 0.01


def _observation(obs_id: int) -> Observation:
    """A plant observation the rule will decide on (no skip applies), standing in for the real one."""
    return Observation(id=obs_id, user=User(id=1, login="bench"), photos=(Photo(id=obs_id, url="bench", position=0),),
                       iconic_taxon_name="Plantae")


def rule_inputs(probs: Sequence[float], labels: Sequence[Label], cfg: DecisionConfig) -> list[float]:
    """The probabilities the rule holds against the cutoff: best species, then each fallback rank's best."""
    out = [float(max(probs))]
    for rank in cfg.fallback_ranks:
        ranked = roll_up(probs, labels, rank)
        if ranked:
            out.append(ranked[0].prob)
    return out


def compare_predictions(reference: Mapping[int, ObservationPrediction | None],
                        other: Mapping[int, ObservationPrediction | None], labels: Sequence[Label],
                        cfg: DecisionConfig) -> dict[str, Any]:
    """Largest probability difference and decisions that differ (near the cutoff or not)."""
    pairs = [(i, a, b) for i, a in reference.items() if a is not None and (b := other.get(i)) is not None]
    max_diff, differ, near, differ_near = 0.0, 0, 0, 0
    for obs_id, a, b in pairs:
        max_diff = max(max_diff, float(np.abs(np.asarray(a.probs) - np.asarray(b.probs)).max()))
        obs = _observation(obs_id)
        da, db = decide(a, labels, obs, cfg), decide(b, labels, obs, cfg)
        is_near = any(abs(p - cfg.cutoff) < NEAR for p in (*rule_inputs(a.probs, labels, cfg),
                                                              *rule_inputs(b.probs, labels, cfg)))
        near += is_near
        if (da.kind, da.taxon_id) != (db.kind, db.taxon_id):
            differ_near += is_near
            differ += not is_near
    return {"observations_compared": len(pairs), "max_prob_diff": max_diff, "decisions_differ": differ,
            "decisions_near_cutoff": near, "decisions_differ_near_cutoff": differ_near, "cutoff": cfg.cutoff}
