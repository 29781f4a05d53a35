"""A scripted moderator for the synthetic world: reviews the queue using the world's truth.

It stands in for people in the review loop (daemon -> review -> `dataset from-reviews` -> `train
--init` -> `evaluate`), so the loop can be run and measured offline.  It records the same review
actions the review UI records (who, what, when; the proposal's status moves on) but posts nothing:
posting is the UI's business and has its own tests.  A right species is approved, a wrong one is
edited to the true species (every `reject_every`-th wrong one is rejected instead, so the export
has negatives too); a genus or family comment is approved when the truth lies within it, else
rejected.  Only the simulator's world knows the truth: this is for the test world alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bot.sim.model import World
from bot.store import Store
from bot.store.review import open_proposals, record_action


@dataclass(frozen=True)
class ScriptedReview:
    actions: dict[str, int]  # approve / edit / reject -> count
    right_before: int  # proposals whose taxon was right (species exact, genus/family containing the truth)
    proposals: int


def review_with_truth(store: Store, world: World, moderator: str = "moderator", reject_every: int = 4
                      ) -> ScriptedReview:
    """Acts on every open proposal whose observation the world knows."""
    counts: Counter[str] = Counter()
    wrong_seen = right = total = 0
    with store.session() as s:
        for d in open_proposals(s):
            obs = world.observations.get(d.observation_id)
            if obs is None or obs.true_taxon_id is None or d.taxon_id is None:
                continue
            total += 1
            truth = obs.true_taxon_id
            ok = d.taxon_id == truth if d.kind == "species" else d.taxon_id in world.ancestor_ids(truth)
            if ok:
                right += 1
                action, edited = "approve", None
            elif d.kind == "species":
                wrong_seen += 1
                rejected = reject_every > 0 and wrong_seen % reject_every == 0
                action, edited = ("reject", None) if rejected else ("edit", truth)
            else:
                action, edited = "reject", None
            record_action(s, d.id, action, moderator, edited_taxon_id=edited,
                          reason="scripted: not this taxon" if action == "reject" else None)
            counts[action] += 1
    return ScriptedReview(dict(counts), right, total)
