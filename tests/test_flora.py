"""The local flora: the weighting before the rule, the flora file, and what `evaluate --flora` reports.

No torch, no HTTP, no database (like test_decide): every number is computed by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.config import DecisionConfig
from bot.decide import decide
from bot.domain import DecisionKind, Label, Observation, ObservationPrediction, Photo, User
from bot.errors import UsageError
from bot.flora import apply_flora, read_flora_file
from bot.training.flora_metrics import flora_comparison

# Two look-alikes of genus G1 (A listed, B not), C of genus G2 (listed), D without a platform taxon id.
LABELS = [Label(0, 11, "A", "species", 1, "G1", 5, "F1"), Label(1, 12, "B", "species", 1, "G1", 5, "F1"),
          Label(2, 13, "C", "species", 2, "G2", 5, "F1"), Label(3, None, "D", "species", 3, "G3", 6, "F2")]
FLORA = {11, 13}
OBS = Observation(id=1, user=User(1, "ana"), photos=(Photo(1, "https://x.test/1.jpg"),), iconic_taxon_name="Plantae")


def _decide(probs: tuple[float, ...]) -> DecisionKind:
    return decide(ObservationPrediction(1, probs, 1), LABELS, OBS, DecisionConfig(cutoff=0.30)).kind


def test_weight_zero_removes_unlisted_species_without_renormalising() -> None:
    w = apply_flora((0.5, 0.3, 0.15, 0.05), LABELS, FLORA)
    assert w.probs == (0.5, 0.0, 0.15, 0.05)  # D has no taxon id: nothing to look up, left alone
    assert [(r.name, r.prob) for r in w.removed] == [("B", 0.3)]


def test_a_model_sure_of_an_unlisted_species_abstains_instead_of_proposing_a_look_alike() -> None:
    probs = (0.2, 0.7, 0.05, 0.05)  # sure of B, which is not on the local list
    w = apply_flora(probs, LABELS, FLORA)
    assert w.probs == (0.2, 0.0, 0.05, 0.05)
    assert _decide(probs) is DecisionKind.SPECIES
    assert _decide(w.probs) is DecisionKind.ABSTAIN  # 0.2 species, 0.2 genus G1, 0.25 family F1: all < 0.30
    renormalised = apply_flora(probs, LABELS, FLORA, renormalise=True)
    assert renormalised.probs == pytest.approx((0.2 / 0.3, 0.0, 0.05 / 0.3, 0.05 / 0.3))
    assert decide(ObservationPrediction(1, renormalised.probs, 1), LABELS, OBS,
                  DecisionConfig(cutoff=0.30)).taxon_id == 11  # the inflated look-alike: why it is not the default


def test_a_soft_weight_keeps_a_prior_and_genus_sums_follow() -> None:
    w = apply_flora((0.1, 0.6, 0.2, 0.1), LABELS, FLORA, weight=0.5)
    assert w.probs == pytest.approx((0.1, 0.3, 0.2, 0.1))
    d = decide(ObservationPrediction(1, w.probs, 1), LABELS, OBS, DecisionConfig(cutoff=0.30))
    assert (d.kind, d.taxon_id, d.score) == (DecisionKind.SPECIES, 12, pytest.approx(0.3))
    assert d.best_genus is not None and d.best_genus.prob == pytest.approx(0.4)


def test_removed_lists_only_unlisted_species_of_the_unweighted_top_k() -> None:
    w = apply_flora((0.4, 0.05, 0.5, 0.05), LABELS, FLORA, top_k=2)
    assert w.removed == ()  # B is outside the flora but not in the top 2
    assert [r.name for r in apply_flora((0.4, 0.05, 0.5, 0.05), LABELS, FLORA, top_k=3).removed] == ["B"]


def test_all_mass_outside_the_flora_stays_zero_when_renormalising() -> None:
    w = apply_flora((0.0, 1.0, 0.0, 0.0), LABELS, FLORA, renormalise=True)
    assert w.probs == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("text, expected", [
    ("taxon_id,name\n11,A\n13,C\n", {11: 1, 13: 1}),
    ("name,count,taxon_id\nA,7,11\nC,,13\n11x,1,11\n", {11: 8, 13: 1}),
    ("11\n13,4\n\n", {11: 1, 13: 4}),
])
def test_flora_file_formats(tmp_path: Path, text: str, expected: dict[int, int]) -> None:
    path = tmp_path / "flora.csv"
    path.write_text(text, encoding="utf-8")
    assert read_flora_file(path) == expected


def test_a_bad_flora_file_is_one_line_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "flora.csv"
    path.write_text("taxon_id\n11\nabc\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"flora.csv line 3: expected a taxon id"):
        read_flora_file(path)
    with pytest.raises(UsageError, match="cannot read"):
        read_flora_file(tmp_path / "missing.csv")


def test_evaluate_flora_comparison_by_hand() -> None:
    # o1 truth A: sure of B (wrong) -> off: species B wrong; on: abstains (A 0.2 < 0.30, G1 0.2, F1 0.25)
    # o2 truth C: C 0.6 -> species C right either way
    # o3 truth B (unlisted): B 0.5 -> off: species B right; on: abstains (A 0.1, G1 0.1, F1 0.25, D/G3 0.15+…)
    probs = np.array([[0.2, 0.7, 0.05, 0.05], [0.1, 0.1, 0.6, 0.2], [0.1, 0.5, 0.15, 0.25]])
    truth = np.array([0, 2, 1])
    out = flora_comparison(probs, truth, LABELS, 0.30, FLORA, 0.0, "flora.csv")
    assert (out["taxa"], out["labels_outside"], out["observations_outside"]) == (2, 1, 1)
    assert out["off"]["species_precision"] == pytest.approx(2 / 3) and out["off"]["species_coverage"] == 1.0
    assert out["on"]["species_precision"] == 1.0 and out["on"]["species_coverage"] == pytest.approx(1 / 3)
    assert out["on"]["rule"]["abstain"]["count"] == 2
    # renormalised: o1 -> A 0.667 (right), o2 -> C 0.75 (right), o3 (truth unlisted) -> D 0.5 (wrong)
    assert out["renormalised"]["species_precision"] == pytest.approx(2 / 3)
    assert out["renormalised"]["species_coverage"] == 1.0
