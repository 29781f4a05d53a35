"""The decision rule, without torch, HTTP or a database."""

from __future__ import annotations

import pytest

from bot.config import DecisionConfig
from bot.decide import (
    ALREADY_AGREES,
    ALREADY_IDENTIFIED,
    CAPTIVE,
    NO_LOADABLE_PHOTO,
    NOT_A_PLANT,
    decide,
    roll_up,
)
from bot.domain import DecisionKind, Identification, Label, Observation, ObservationPrediction, Photo, Taxon, User

# Two families; family F1 has genera G1 (species 1, 2) and G2 (species 3); family F2 has G3 (species 4, 5).
LABELS = [
    Label(0, 101, "Alpha one", "species", 11, "Alpha", 1, "Fam one"),
    Label(1, 102, "Alpha two", "species", 11, "Alpha", 1, "Fam one"),
    Label(2, 103, "Beta one", "species", 12, "Beta", 1, "Fam one"),
    Label(3, 104, "Gamma one", "species", 13, "Gamma", 2, "Fam two"),
    Label(4, None, "Gamma incognita", "species", 13, "Gamma", 2, "Fam two"),
]
PLANT = Taxon(47126, "Plantae", "kingdom", (47126,), iconic_taxon_name="Plantae")
CFG = DecisionConfig()


def obs(**kw: object) -> Observation:
    base: dict[str, object] = {
        "id": 1, "user": User(5, "observer"), "photos": (Photo(1, "http://x/photos/1/square.jpg"),),
        "iconic_taxon_name": "Plantae", "taxon": PLANT,
    }
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def pred(*probs: float, n: int = 1) -> ObservationPrediction:
    return ObservationPrediction(1, tuple(probs), n)


def test_species_when_top_clears_cutoff() -> None:
    d = decide(pred(0.5, 0.2, 0.1, 0.1, 0.1), LABELS, obs(), CFG)
    assert d.kind is DecisionKind.SPECIES
    assert (d.taxon_id, d.taxon_name, d.rank) == (101, "Alpha one", "species")
    assert d.score == pytest.approx(0.5)
    assert [r.name for r in d.top_species][:2] == ["Alpha one", "Alpha two"]
    assert d.best_genus is not None and d.best_genus.name == "Alpha"
    assert d.best_genus.prob == pytest.approx(0.7)
    assert d.best_family is not None and d.best_family.prob == pytest.approx(0.8)


def test_cutoff_is_inclusive() -> None:
    assert decide(pred(0.30, 0.25, 0.15, 0.15, 0.15), LABELS, obs(), CFG).kind is DecisionKind.SPECIES


def test_genus_comment_when_species_split() -> None:
    d = decide(pred(0.2, 0.2, 0.2, 0.2, 0.2), LABELS, obs(), CFG)
    assert d.kind is DecisionKind.GENUS
    assert (d.taxon_id, d.taxon_name) == (11, "Alpha")  # 0.4 ties Gamma's 0.4: the name breaks the tie
    assert d.score == pytest.approx(0.4)


def test_genus_is_tried_before_family() -> None:
    probs = (0.14, 0.14, 0.14, 0.29, 0.29)  # genus Gamma = family two = 0.58; family one = 0.42
    assert decide(pred(*probs), LABELS, obs(), DecisionConfig(cutoff=0.58)).kind is DecisionKind.GENUS
    assert decide(pred(*probs), LABELS, obs(), DecisionConfig(cutoff=0.59)).kind is DecisionKind.ABSTAIN


def test_family_comment() -> None:
    probs = (0.2, 0.1, 0.25, 0.25, 0.2)  # genera: Alpha .3, Beta .25, Gamma .45; families F1 .55, F2 .45
    d = decide(pred(*probs), LABELS, obs(), DecisionConfig(cutoff=0.5))
    assert d.kind is DecisionKind.FAMILY
    assert (d.taxon_id, d.taxon_name) == (1, "Fam one")
    assert d.score == pytest.approx(0.55)


def test_abstain_when_nothing_clears() -> None:
    d = decide(pred(0.2, 0.2, 0.2, 0.2, 0.2), LABELS, obs(), DecisionConfig(cutoff=0.9))
    assert d.kind is DecisionKind.ABSTAIN
    assert d.taxon_id is None and len(d.top_species) == 5


def test_fallback_ranks_can_be_disabled() -> None:
    d = decide(pred(0.2, 0.2, 0.2, 0.2, 0.2), LABELS, obs(), DecisionConfig(fallback_ranks=[]))
    assert d.kind is DecisionKind.ABSTAIN


def test_label_without_taxon_id_falls_back_to_genus() -> None:
    d = decide(pred(0.05, 0.05, 0.05, 0.05, 0.8), LABELS, obs(), CFG)
    assert d.kind is DecisionKind.GENUS and d.taxon_name == "Gamma"
    assert any("no platform taxon id" in r for r in d.reasons)


@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        (obs(iconic_taxon_name="Insecta"), NOT_A_PLANT),
        (obs(captive=True), CAPTIVE),
        (obs(identifications=(Identification(9, User(7, "Mod"), PLANT, current=True),)), ALREADY_IDENTIFIED),
    ],
)
def test_skips_before_inference(observation: Observation, reason: str) -> None:
    d = decide(pred(0.9, 0.1, 0, 0, 0), LABELS, observation, CFG, posting_logins=["mod"])
    assert d.kind is DecisionKind.SKIP and d.reasons == (reason,)


def test_withdrawn_identification_by_the_account_does_not_skip() -> None:
    ident = Identification(9, User(7, "mod"), PLANT, current=False)
    d = decide(pred(0.9, 0.1, 0, 0, 0), LABELS, obs(identifications=(ident,)), CFG, posting_logins=["mod"])
    assert d.kind is DecisionKind.SPECIES


def test_captive_allowed_when_configured() -> None:
    d = decide(pred(0.9, 0.1, 0, 0, 0), LABELS, obs(captive=True), DecisionConfig(skip_captive=False))
    assert d.kind is DecisionKind.SPECIES


def test_no_loadable_photo() -> None:
    assert decide(None, LABELS, obs(), CFG).reasons == (NO_LOADABLE_PHOTO,)
    assert decide(pred(0.9, 0.1, 0, 0, 0, n=0), LABELS, obs(), CFG).reasons == (NO_LOADABLE_PHOTO,)


def test_agreeing_observation_taxon_is_skipped() -> None:
    species = Taxon(101, "Alpha one", "species", (47126, 1, 11, 101))
    d = decide(pred(0.9, 0.1, 0, 0, 0), LABELS, obs(taxon=species), CFG)
    assert d.kind is DecisionKind.SKIP and d.reasons == (ALREADY_AGREES,)
    below = Taxon(999, "Alpha one var. x", "variety", (47126, 1, 11, 101, 999))
    assert decide(pred(0.9, 0.1, 0, 0, 0), LABELS, obs(taxon=below), CFG).kind is DecisionKind.SKIP


def test_community_taxon_equal_is_skipped_but_coarser_taxon_is_not() -> None:
    d = decide(pred(0.9, 0.1, 0, 0, 0), LABELS, obs(community_taxon_id=101), CFG)
    assert d.kind is DecisionKind.SKIP
    genus = Taxon(11, "Alpha", "genus", (47126, 1, 11))
    assert decide(pred(0.9, 0.1, 0, 0, 0), LABELS, obs(taxon=genus), CFG).kind is DecisionKind.SPECIES


def test_roll_up_sums_per_genus() -> None:
    ranked = roll_up((0.1, 0.2, 0.3, 0.25, 0.15), LABELS, "genus")
    assert [(r.name, round(r.prob, 6)) for r in ranked] == [("Gamma", 0.4), ("Alpha", 0.3), ("Beta", 0.3)]


def test_probabilities_must_match_labels() -> None:
    with pytest.raises(ValueError):
        decide(pred(0.5, 0.5), LABELS, obs(), CFG)
