"""The bench's precision guard counts a flipped decision unless the rule's inputs sat at the cutoff."""

from __future__ import annotations

from bot.bench_compare import compare_predictions
from bot.config import DecisionConfig
from bot.domain import Label, ObservationPrediction

LABELS = [Label(index=0, taxon_id=10, name="A a", genus="A", genus_taxon_id=1, family="F", family_taxon_id=9),
          Label(index=1, taxon_id=11, name="A b", genus="A", genus_taxon_id=1, family="F", family_taxon_id=9),
          Label(index=2, taxon_id=20, name="B c", genus="B", genus_taxon_id=2, family="G", family_taxon_id=8)]
CFG = DecisionConfig(cutoff=0.30, fallback_ranks=["genus", "family"])


def pred(obs_id: int, *probs: float) -> ObservationPrediction:
    return ObservationPrediction(obs_id, probs, 1)


def test_flips_far_from_the_cutoff_count_and_flips_at_it_are_set_apart() -> None:
    reference = {1: pred(1, 0.80, 0.10, 0.10),   # species A a in both
                 2: pred(2, 0.50, 0.10, 0.40),   # species A a ...
                 3: pred(3, 0.305, 0.29, 0.20),   # species A a at 0.305: near the cutoff ...
                 4: None}                         # no photo decoded: not compared
    other = {1: pred(1, 0.79, 0.11, 0.10),
             2: pred(2, 0.10, 0.10, 0.80),       # ... flips to B c, nowhere near 0.30
             3: pred(3, 0.295, 0.29, 0.20),     # ... becomes a genus comment (A: 0.585)
             4: pred(4, 1.0, 0.0, 0.0)}
    out = compare_predictions(reference, other, LABELS, CFG)
    assert out["observations_compared"] == 3
    assert out["decisions_differ"] == 1 and out["decisions_differ_near_cutoff"] == 1
    assert out["decisions_near_cutoff"] == 1
    assert abs(out["max_prob_diff"] - 0.40) < 1e-9


def test_a_genus_comment_turning_into_a_species_id_near_the_cutoff_is_excused() -> None:
    reference = {7: pred(7, 0.295, 0.20, 0.505)}  # B c wins in both: the same species ID
    other = {7: pred(7, 0.305, 0.19, 0.505)}
    out = compare_predictions(reference, other, LABELS, CFG)
    assert out["decisions_differ"] == 0 and out["decisions_differ_near_cutoff"] == 0
    reference = {8: pred(8, 0.295, 0.20, 0.10)}   # genus A (0.495): a genus comment
    other = {8: pred(8, 0.305, 0.19, 0.10)}       # A a clears the cutoff: a species ID
    out = compare_predictions(reference, other, LABELS, CFG)
    assert out["decisions_differ"] == 0 and out["decisions_differ_near_cutoff"] == 1
