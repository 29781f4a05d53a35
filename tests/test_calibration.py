"""Temperature scaling, ECE and target cutoffs on sets whose over-confidence is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from bot import stats
from bot.classifier import photo_probabilities
from bot.config import DecisionConfig
from bot.domain import Label
from bot.training import calibration, rules


def nll_at(t: float, logits: np.ndarray, group: np.ndarray, truth: np.ndarray) -> float:
    """The objective written out independently: per photo softmax(z/T), mean per observation, -log p[y]."""
    n = len(truth)
    p = np.exp(logits / t - (logits / t).max(axis=-1, keepdims=True))
    p = (p / p.sum(axis=-1, keepdims=True)).mean(axis=1)  # crops
    obs = np.zeros((n, logits.shape[-1]))
    for row, g in enumerate(group):
        obs[g] += p[row]
    obs /= np.bincount(group, minlength=n)[:, None]
    return float(-np.log(obs[np.arange(n), truth]).mean())


def grid_minimum(f, low: float, high: float) -> float:  # type: ignore[no-untyped-def]
    """Dense grid, then a finer grid around the best point, three times."""
    for _ in range(4):
        grid = np.linspace(low, high, 201)
        values = [f(t) for t in grid]
        i = int(np.argmin(values))
        low, high = grid[max(0, i - 2)], grid[min(len(grid) - 1, i + 2)]
    return float((low + high) / 2)


def overconfident_set(seed: int = 0, n_obs: int = 400, n_labels: int = 12, sharpen: float = 3.0):  # type: ignore[no-untyped-def]
    """Labels drawn from softmax(z); the model says softmax(sharpen * z) on each of 1-3 photos."""
    rng = np.random.default_rng(seed)
    group, logits, truth = [], [], []
    for o in range(n_obs):
        z = rng.normal(0, 1.5, n_labels)
        p = np.exp(z) / np.exp(z).sum()
        truth.append(rng.choice(n_labels, p=p))
        for _ in range(rng.integers(1, 4)):
            group.append(o)
            logits.append([sharpen * (z + rng.normal(0, 0.3, n_labels))])
    return np.array(logits), np.array(group), np.array(truth)


def test_fitted_temperature_minimises_the_nll_of_averaged_probabilities() -> None:
    logits, group, truth = overconfident_set()
    fitted = calibration.fit_temperature(logits, group, truth)
    independent = grid_minimum(lambda t: nll_at(t, logits, group, truth), 0.3, 10.0)
    assert fitted == pytest.approx(independent, abs=1e-3)
    assert 2.0 < fitted < 4.5  # about the factor the logits were sharpened by
    before = calibration.observation_probs(logits, group, len(truth), None)
    after = calibration.observation_probs(logits, group, len(truth), fitted)
    assert calibration.nll(after, truth) < calibration.nll(before, truth)
    assert calibration.ece(after, truth) < calibration.ece(before, truth) / 2


def test_temperature_one_changes_nothing_and_divides_logits_before_the_softmax() -> None:
    z = np.array([[[2.0, 0.0, -1.0], [0.0, 2.0, -1.0]]])  # one photo, two crops
    assert photo_probabilities(z, None) == pytest.approx(photo_probabilities(z, 1.0))
    scaled = photo_probabilities(z, 2.0)
    by_hand = np.mean([np.exp(c / 2) / np.exp(c / 2).sum() for c in z[0]], axis=0)
    assert scaled[0] == pytest.approx(by_hand)


def test_ece_and_reliability_by_hand() -> None:
    # Top probabilities .95 (right), .9 (wrong), .55 (right), .58 (right); 15 bins of width 1/15.
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.45, 0.55], [0.58, 0.42]])
    truth = np.array([0, 1, 1, 0])
    full = [b for b in calibration.reliability(probs, truth) if b["count"]]
    assert [(round(b["low"] * 15), b["count"], b["accuracy"]) for b in full] == [(8, 2, 1.0), (13, 1, 0.0),
                                                                                  (14, 1, 1.0)]
    assert full[0]["confidence"] == pytest.approx(0.565)
    expected = 2 / 4 * abs(1 - 0.565) + 1 / 4 * abs(0 - 0.9) + 1 / 4 * abs(1 - 0.95)
    assert calibration.ece(probs, truth) == pytest.approx(expected)
    assert calibration.nll(probs, truth) == pytest.approx(-np.mean(np.log([0.95, 0.1, 0.55, 0.58])))


def test_wilson_interval_by_hand() -> None:
    assert stats.wilson(0, 0) is None
    lo, hi = stats.wilson(8, 10)  # type: ignore[misc]
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_lowest_cutoff_reaching_the_target_needs_enough_decisions() -> None:
    # scores best first: .9 R, .8 R, .7 W, .6 R, .5 R, .4 W -> precision at each cutoff:
    # .9: 1/1, .8: 2/2, .7: 2/3, .6: 3/4, .5: 4/5, .4: 4/6
    scores, right = [0.5, 0.9, 0.4, 0.7, 0.8, 0.6], [True, True, False, False, True, True]
    assert stats.lowest_cutoff(scores, right, 0.75, 1, 0.05)["cutoff"] == 0.5  # 4/5 = .8 (lowest reaching)
    assert stats.lowest_cutoff(scores, right, 0.9, 1, 0.05)["cutoff"] == 0.8
    none = stats.lowest_cutoff(scores, right, 0.9, 3, 0.05)
    assert none["cutoff"] is None and "no cutoff reaches 0.90" in none["reason"]
    assert "fewer than 10" in stats.lowest_cutoff(scores, right, 0.5, 10, 0.05)["reason"]


def test_target_cutoffs_go_through_the_real_rule() -> None:
    """Species A (id 1) and B (no platform id) in genus G (id 10): B can never be a species proposal,
    so its observations fall back to the genus, where they are right."""
    labels = [Label(0, 1, "A", "species", 10, "G", 100, "F"), Label(1, None, "B", "species", 10, "G", 100, "F"),
              Label(2, 3, "C", "species", 20, "H", 100, "F")]
    probs = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.6, 0.1, 0.3]] * 2 + [[0.05, 0.9, 0.05]] * 3)
    truth = np.array([0, 0, 0, 0, 2, 2, 1, 1, 1])  # A right 4 times at .9, wrong twice at .6
    found = rules.target_cutoffs(probs, truth, np.ones(9), labels, DecisionConfig(), 0.9, 2)
    assert found["cutoffs"]["species"] == 0.9 and found["species"]["decided"] == 4
    # the genus pass: species cutoff .9; left are the .6 rows (genus G .7, wrong: truth H) and B's (G .95, right)
    assert found["genus"]["decided"] == 3 and found["cutoffs"]["genus"] == pytest.approx(0.95)
    # the family pass: only the two .6 rows are left; family F (1.0) is right for both
    assert found["family"]["decided"] == 2 and found["cutoffs"]["family"] == pytest.approx(1.0)
    assert rules.target_cutoffs(probs, truth, np.ones(9), labels, DecisionConfig(), 0.9, 3)["family"]["cutoff"] is None
