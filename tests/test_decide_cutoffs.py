"""Per-rank cutoffs, bundle cutoffs and iNaturalist's common-ancestor fallback (pure, no torch)."""

from __future__ import annotations

import pytest

from bot.config import DecisionConfig
from bot.decide import RULE_VERSION, common_ancestor, decide, with_bundle_cutoffs
from bot.domain import DecisionKind, Label
from bot.errors import UsageError
from tests.test_decide import LABELS, obs, pred

# LABELS: Alpha one/two (genus Alpha, Fam one), Beta one (Beta, Fam one), Gamma one + incognita (Gamma, Fam two).


def test_each_rank_is_held_to_its_own_cutoff_and_records_it() -> None:
    probs = pred(0.5, 0.2, 0.1, 0.1, 0.1)  # species .5, Alpha .7, Fam one .8
    cfg = DecisionConfig(cutoff=0.3, species_cutoff=0.6, genus_cutoff=0.75)
    d = decide(probs, LABELS, obs(), cfg)
    assert (d.kind, d.taxon_id, d.cutoff) == (DecisionKind.FAMILY, 1, 0.3)  # family falls back to `cutoff`
    assert d.rule == f"summed/{RULE_VERSION}"
    d = decide(probs, LABELS, obs(), DecisionConfig(species_cutoff=0.6, genus_cutoff=0.7))
    assert (d.kind, d.taxon_id, d.cutoff) == (DecisionKind.GENUS, 11, 0.7)
    d = decide(probs, LABELS, obs(), DecisionConfig(species_cutoff=0.5))
    assert (d.kind, d.taxon_id, d.cutoff) == (DecisionKind.SPECIES, 101, 0.5)


def test_abstention_names_every_cutoff_and_records_the_species_one() -> None:
    d = decide(pred(0.2, 0.2, 0.2, 0.2, 0.2), LABELS, obs(), DecisionConfig(species_cutoff=0.9, cutoff=0.95))
    assert d.kind is DecisionKind.ABSTAIN and d.cutoff == 0.9
    assert d.reasons[0] == "nothing reached its cutoff (species 0.90, genus 0.95, family 0.95)"


def test_bundle_cutoffs_fill_the_settings_and_a_missing_rank_keeps_the_config() -> None:
    cfg = DecisionConfig(cutoff=0.3, genus_cutoff=0.4, cutoffs="bundle")
    out = with_bundle_cutoffs(cfg, {"species": 0.62, "family": 0.5})
    assert (out.cutoff_for("species"), out.cutoff_for("genus"), out.cutoff_for("family")) == (0.62, 0.4, 0.5)
    assert with_bundle_cutoffs(DecisionConfig(), {"species": 0.9}) == DecisionConfig()  # "config": untouched
    with pytest.raises(UsageError, match="calibrate"):
        with_bundle_cutoffs(cfg, None)


def ca_cfg(**kw: object) -> DecisionConfig:
    return DecisionConfig(fallback="common-ancestor", **kw)  # type: ignore[arg-type]


def test_common_ancestor_is_the_deepest_taxon_past_the_threshold() -> None:
    # Alpha .45+.40 = .85 >= .78 -> genus Alpha; no species reaches .5
    d = decide(pred(0.45, 0.40, 0.05, 0.05, 0.05), LABELS, obs(), ca_cfg(species_cutoff=0.5))
    assert (d.kind, d.taxon_id, d.cutoff, d.rule) == (DecisionKind.GENUS, 11, 0.78, f"common-ancestor/{RULE_VERSION}")
    # Alpha .35+.35 = .70 < .78 but Fam one .70+.2 = .90 -> family; the summed rule would say genus at .3
    probs = pred(0.35, 0.35, 0.2, 0.05, 0.05)
    assert decide(probs, LABELS, obs(), ca_cfg(species_cutoff=0.5)).kind is DecisionKind.FAMILY
    assert decide(probs, LABELS, obs(), DecisionConfig(species_cutoff=0.5)).kind is DecisionKind.GENUS
    # nothing at .78: abstain, naming both cutoffs
    d = decide(pred(0.3, 0.1, 0.1, 0.3, 0.2), LABELS, obs(), ca_cfg(species_cutoff=0.5))
    assert d.kind is DecisionKind.ABSTAIN
    assert d.reasons[0] == "nothing reached its cutoff (species 0.50, common ancestor 0.78)"


def test_common_ancestor_renormalises_after_dropping_tiny_scores() -> None:
    # 20 species: A1 .6, A2 .1, then 18 others sharing .3 (each .0167 >= 1% of .6 = .006, so all within
    # the window of 15 count). Kept: A1, A2 and the 13 best others -> Alpha share = .7 / (.7 + 13 * .3/18).
    labels = [Label(0, 1, "A1", "species", 10, "Alpha", 100, "F"), Label(1, 2, "A2", "species", 10, "Alpha", 100, "F")]
    labels += [Label(i, 10 + i, f"O{i}", "species", 20 + i, f"G{i}", 200, "Other") for i in range(2, 20)]
    probs = [0.6, 0.1] + [0.3 / 18] * 18
    got = common_ancestor(probs, labels, threshold=0.7)
    share = 0.7 / (0.7 + 13 * 0.3 / 18)
    assert [r.name for r in got] == ["Alpha", "F"]
    assert got[0].prob == pytest.approx(share)
    # the same but with the others below 1% of the best: they are dropped and Alpha holds everything
    probs = [0.9, 0.09] + [0.01 / 18] * 18
    assert common_ancestor(probs, labels, threshold=0.99)[0].prob == pytest.approx(1.0)
