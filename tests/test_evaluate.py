"""Evaluation metrics on a hand-made set of predictions: every number below was computed by hand.

Labels (index name genus family): 0 A G1 F1, 1 B G1 F1, 2 C G2 F1, 3 D G3 F2, 4 E G3 F2, 5 F G4 F3,
6 G G5 F4.  Six observations (photo probabilities below; the order of photos is interleaved on
purpose):

obs  photos truth  averaged top prob  top-1  top-5  best genus  best family  rule @0.30
o1   1      A      0.91               yes    yes    G1 yes      F1 yes       species A (right)
o2   2      B      0.405              yes    yes    G1 yes      F1 yes       species B (right)
o3   1      C      0.26               no (A) no     G1 no       F1 yes       genus G1 (wrong)
o4   3      D      0.4333             yes    yes    G3 yes      F2 yes       species D (right)
o5   4      F      0.26               yes    yes    G3 no       F1 no        abstain
o6   1      E      0.21               no (F) yes    G3 yes      F1 no        family F1 (wrong)
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.domain import Label
from bot.training import metrics, plots
from bot.training.plots import write_report

TAXA = [("A", "G1", "F1"), ("B", "G1", "F1"), ("C", "G2", "F1"), ("D", "G3", "F2"), ("E", "G3", "F2"),
        ("F", "G4", "F3"), ("G", "G5", "F4")]
LABELS = [Label(i, 100 + i, n, "species", None, g, None, f) for i, (n, g, f) in enumerate(TAXA)]
O5 = [.13, .12, .04, .14, .14, .26, .17]
PHOTOS = [  # (observation, truth, probabilities)
    ("o1", 0, [.91, .02, .02, .02, .01, .01, .01]),
    ("o2", 1, [.50, .01, .10, .10, .10, .10, .09]),  # photo: wrong, B not even in its top 5
    ("o3", 2, [.26, .26, .03, .18, .10, .09, .08]),
    ("o4", 3, [0, 0, 0, .5, .3, .2, 0]),
    ("o5", 5, O5),
    ("o4", 3, [0, 0, 0, .3, .5, .2, 0]),  # photo: wrong (E)
    ("o2", 1, [.09, .80, .03, .02, .02, .02, .02]),
    ("o5", 5, O5),
    ("o4", 3, [0, 0, 0, .5, .1, .4, 0]),
    ("o5", 5, O5),
    ("o6", 4, [.15, .05, .15, .07, .19, .21, .18]),
    ("o5", 5, O5),
]


def photo_arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
    return (np.array([p for _, _, p in PHOTOS], dtype=np.float64), np.array([t for _, t, _ in PHOTOS]),
            [o for o, _, _ in PHOTOS])


def curve_point(curve: list[dict], group: str | int, cutoff: float) -> tuple:
    row = next(r for r in curve if r["n_photos"] == group and r["cutoff"] == cutoff)
    return row["top1"], row["top5"], row["discarded"]


@pytest.fixture(scope="module")
def result() -> dict:
    probs, truth, obs = photo_arrays()
    return metrics.summary(probs, truth, obs, LABELS, cutoff=0.30, targets=(0.8, 0.9, 0.99))


def test_observation_average_is_the_mean_of_its_photos() -> None:
    probs, truth, n_photos, ids = metrics.average_by_observation(*photo_arrays())
    assert ids == ["o1", "o2", "o3", "o4", "o5", "o6"]
    assert n_photos.tolist() == [1, 2, 1, 3, 4, 1]
    assert truth.tolist() == [0, 1, 2, 3, 5, 4]
    assert probs[3] == pytest.approx([0, 0, 0, 1.3 / 3, 0.9 / 3, 0.8 / 3, 0])
    assert probs[1] == pytest.approx([.295, .405, .065, .06, .06, .06, .055])


def test_counts_and_accuracies(result: dict) -> None:
    assert result["photos"] == 12
    assert result["observations"] == 6
    assert result["top1"] == pytest.approx(4 / 6)
    assert result["top5"] == pytest.approx(5 / 6)
    assert result["photo_top1"] == pytest.approx(8 / 12)
    assert result["photo_top5"] == pytest.approx(10 / 12)
    assert result["genus_top1"] == pytest.approx(4 / 6)
    assert result["family_top1"] == pytest.approx(4 / 6)


def test_cutoff_curve_all_observations(result: dict) -> None:
    curve = result["cutoff_curve"]
    assert [r["cutoff"] for r in curve if r["n_photos"] == "all"] == [round(i * 0.05, 2) for i in range(20)]
    assert {r["n_photos"] for r in curve} == {"all", 1, 2, 3, "4+"}
    assert len(curve) == 5 * 20
    for c in (0.0, 0.1, 0.2):
        assert curve_point(curve, "all", c) == pytest.approx((4 / 6, 5 / 6, 0.0))
    assert curve_point(curve, "all", 0.25) == pytest.approx((4 / 5, 4 / 5, 1 / 6))
    for c in (0.3, 0.35, 0.4):
        assert curve_point(curve, "all", c) == pytest.approx((1.0, 1.0, 3 / 6))
    for c in (0.45, 0.9):
        assert curve_point(curve, "all", c) == pytest.approx((1.0, 1.0, 5 / 6))
    assert curve_point(curve, "all", 0.95) == (None, None, 1.0)


def test_cutoff_curve_by_number_of_photos(result: dict) -> None:
    curve = result["cutoff_curve"]
    assert curve_point(curve, 1, 0.2) == pytest.approx((1 / 3, 2 / 3, 0.0))
    assert curve_point(curve, 1, 0.25) == pytest.approx((1 / 2, 1 / 2, 1 / 3))
    assert curve_point(curve, 1, 0.5) == pytest.approx((1.0, 1.0, 2 / 3))
    assert curve_point(curve, 2, 0.4) == (1.0, 1.0, 0.0)
    assert curve_point(curve, 2, 0.45) == (None, None, 1.0)
    assert curve_point(curve, 3, 0.4) == (1.0, 1.0, 0.0)
    assert curve_point(curve, 3, 0.45) == (None, None, 1.0)
    assert curve_point(curve, "4+", 0.25) == (1.0, 1.0, 0.0)
    assert curve_point(curve, "4+", 0.3) == (None, None, 1.0)


def test_model_rule_outcome(result: dict) -> None:
    rule = result["model_rule"]
    assert rule["species"] == {"count": 3, "precision": 1.0}
    assert rule["genus"] == {"count": 1, "precision": 0.0}
    assert rule["family"] == {"count": 1, "precision": 0.0}
    assert rule["abstain"] == {"count": 1}


def test_the_daemons_rule_never_proposes_a_taxon_without_a_platform_id(result: dict) -> None:
    """LABELS have no genus or family taxon ids: the daemon cannot post G1 on o3 nor F1 on o6."""
    rule = result["rule"]
    assert rule["rule"] == "summed/2" and rule["cutoffs"] == {"species": 0.3, "genus": 0.3, "family": 0.3}
    assert (rule["species"]["count"], rule["species"]["precision"]) == (3, 1.0)
    assert rule["species"]["interval"] == pytest.approx((0.4385, 1.0), abs=1e-4)  # Wilson, 3 of 3
    assert (rule["genus"]["count"], rule["family"]["count"], rule["abstain"]["count"]) == (0, 0, 3)


def test_the_daemons_rule_with_taxon_ids_matches_the_model_view() -> None:
    genus_ids = {"G1": 11, "G2": 12, "G3": 13, "G4": 14, "G5": 15}
    family_ids = {"F1": 21, "F2": 22, "F3": 23, "F4": 24}
    labels = [Label(i, 100 + i, n, "species", genus_ids[g], g, family_ids[f], f) for i, (n, g, f) in enumerate(TAXA)]
    probs, truth, obs = photo_arrays()
    rule = metrics.summary(probs, truth, obs, labels, cutoff=0.30, targets=())["rule"]
    assert (rule["species"]["count"], rule["species"]["precision"]) == (3, 1.0)
    assert (rule["genus"]["count"], rule["genus"]["precision"]) == (1, 0.0)  # o3: G1, truth G2
    assert (rule["family"]["count"], rule["family"]["precision"]) == (1, 0.0)  # o6: F1, truth F2
    assert rule["abstain"]["count"] == 1


def test_decision_rule_at_a_lower_cutoff() -> None:
    probs, truth, n, _ = metrics.average_by_observation(*photo_arrays())
    rule = metrics.rule_outcome(probs, truth, LABELS, cutoff=0.25)
    assert rule["species"] == {"count": 5, "precision": pytest.approx(4 / 5)}
    assert rule["genus"] == {"count": 1, "precision": 1.0}  # o6: G3 0.26, right
    assert rule["family"] == {"count": 0, "precision": None}
    assert rule["abstain"] == {"count": 0}


def test_cutoffs_reaching_target_precision(result: dict) -> None:
    targets = result["target_cutoffs"]
    assert [t["precision"] for t in targets] == [0.8, 0.9, 0.99]
    assert targets[0]["cutoff"] == 0.25 and targets[0]["discarded"] == pytest.approx(1 / 6)
    assert targets[1]["cutoff"] == 0.3 and targets[1]["discarded"] == pytest.approx(0.5)
    assert targets[2]["cutoff"] == 0.3


def test_unreachable_target_is_null() -> None:
    probs = np.array([[0.6, 0.4], [0.7, 0.3]])
    curve = metrics.cutoff_curve(probs, np.array([1, 1]), np.array([1, 1]))
    assert metrics.target_cutoffs(curve, [0.5]) == [{"precision": 0.5, "cutoff": None, "top1": None,
                                                      "discarded": None}]


def test_photos_of_one_observation_with_two_labels_is_an_error() -> None:
    with pytest.raises(ValueError, match="o1"):
        metrics.average_by_observation(np.eye(2), [0, 1], ["o1", "o1"])


def test_confusion_and_taxonomic_order() -> None:
    labels = [Label(0, None, "Zeta a", genus="Zeta", family="Betaceae"),
              Label(1, None, "Alpha b", genus="Alpha", family="Gammaceae"),
              Label(2, None, "Beta c", genus="Beta", family="Betaceae")]
    assert metrics.taxonomic_order(labels) == [2, 0, 1]
    matrix = metrics.confusion(np.array([0, 0, 1, 2]), np.array([0, 2, 1, 2]), 3)
    assert matrix.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]


def test_top1_top5_by_number_of_photos(result: dict) -> None:
    rows = {r["n_photos"]: (r["observations"], r["top1"], r["top5"]) for r in result["by_photos"]}
    assert rows == {"all": (6, pytest.approx(4 / 6), pytest.approx(5 / 6)),
                    1: (3, pytest.approx(1 / 3), pytest.approx(2 / 3)), 2: (1, 1.0, 1.0), 3: (1, 1.0, 1.0),
                    "4+": (1, 1.0, 1.0)}


def test_sparse_confusion_with_family_and_genus_blocks(result: dict) -> None:
    conf = result["confusion"]
    assert conf["cells"] == [[0, 0, 1], [1, 1, 1], [2, 0, 1], [3, 3, 1], [4, 5, 1], [5, 5, 1]]
    assert conf["order"] == [0, 1, 2, 3, 4, 5, 6] and conf["labels"] == 7
    assert conf["family_starts"] == [3, 5, 6] and conf["genus_starts"] == [2, 3, 5, 6]
    image = plots.confusion_image(conf)
    assert image[2].tolist() == [1, 0, 0, 0, 0, 0, 0] and image[6].sum() == 0  # row-normalised; G unseen


def test_cutoff_points_carry_their_support(result: dict) -> None:
    rows = [r for r in result["cutoff_curve"] if r["n_photos"] == "all"]
    points = {c: (kept, low) for c, _, kept, low in plots.accuracy_points(rows)}
    assert points[0.0] == (6, True) and points[0.9] == (1, True)  # 6 observations: all below 10
    many = [{"cutoff": 0.0, "top1": 0.5, "kept": 12}, {"cutoff": 0.5, "top1": None, "kept": 0}]
    assert plots.accuracy_points(many) == [(0.0, 0.5, 12, False)]


def test_report_files(tmp_path, result: dict) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps(result))
    paths = write_report(tmp_path, result, LABELS)
    for path in paths[:2]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "index.html").read_text()
    assert 'src="cutoff_curve.png"' in page and 'src="confusion_matrix.png"' in page
    assert "0.667" in page  # top-1
