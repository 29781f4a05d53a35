"""Parsers on the real iNaturalist responses (recorded by pyinaturalist's test suite), plus fuzzing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import Observation
from bot.platforms.base import Rejected
from bot.platforms.parse_legacy import parse_legacy_observation
from bot.platforms.parse_v1 import parse_observation, parse_results, parse_taxon, safe_parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_v1_page_observation_fields() -> None:
    obs, rejected, last_id = parse_results(load("get_observations_v1_page1.json"))
    assert rejected == [] and last_id == 57754375
    (o,) = obs
    assert o.id == 57754375 and o.user.login == "samroom" and o.user.id == 2852555
    assert [p.id for p in o.photos] == [92152429]
    assert o.photos[0].url.startswith("https://static.inaturalist.org/photos/92152429/square.jpg")
    assert o.taxon is not None and o.taxon.id == 48662 and o.taxon.rank == "species"
    assert o.taxon.ancestor_ids[0] == 48460 and o.taxon.ancestor_ids[-1] == 48662
    assert o.iconic_taxon_name == "Insecta" and not o.is_plant
    assert o.community_taxon_id == 48662 and o.quality_grade == "research" and o.captive is False
    assert len(o.identifications) == 2 and len(o.comments) == 2
    vision = [i for i in o.identifications if i.vision]
    assert vision and vision[0].user.login == "samroom" and vision[0].category == "improving"
    # identification taxa omit their own id from ancestor_ids upstream; the parser appends it
    assert all(i.taxon is None or i.taxon.ancestor_ids[-1] == i.taxon.id for i in o.identifications)


def test_v1_page2_and_by_id() -> None:
    obs, rejected, _ = parse_results(load("get_observations_v1_page2.json"))
    assert not rejected and obs[0].id == 57707611 and len(obs[0].identifications) == 5
    for name in ("get_observation.json", "get_observations_by_id.json"):
        (o,), rejected, last = parse_results(load(name))
        assert not rejected and last == o.id == 16227955
        assert [p.id for p in o.photos] == [24355315, 24355313]  # observation_photos position order
        assert [p.position for p in o.photos] == [0, 1]
        assert sum(i.vision for i in o.identifications) == 1 and len(o.identifications) == 3


def test_photos_follow_positions_not_list_order() -> None:
    raw = load("get_observation.json")["results"][0]
    raw["observation_photos"].reverse()  # the list order must not matter
    o = parse_observation(raw)
    assert [p.id for p in o.photos] == [24355315, 24355313]


def test_ofvs_tags_and_non_current_identification() -> None:
    o = parse_observation(load("get_observation_with_ofvs.json")["results"][0])
    assert o.id == 70963477 and len(o.photos) == 4 and o.quality_grade == "needs_id"
    assert o.tags == ("microscopy",)
    assert o.field_values["Feeding on"] == "119900" and o.field_values["Magnification (Picture 2)"] == "400"
    assert [i.current for i in o.identifications] == [True, False]
    assert o.community_taxon_id is None
    assert o.uri == "https://www.inaturalist.org/observations/70963477"


def test_annotations_in_the_real_shape() -> None:
    o = parse_observation(load("get_observation_with_ofvs.json")["results"][0])
    assert [(a.attribute_id, a.value_id, a.vote_score) for a in o.annotations] == [(1, 2, 0), (17, 18, 0), (22, 24, 0)]
    raw = load("get_observation_with_ofvs.json")["results"][0]
    raw["annotations"] = [{"controlled_attribute_id": 12}, {"controlled_attribute_id": 12, "controlled_value_id": 13,
                                                            "vote_score": -2}]
    assert [(a.attribute_id, a.value_id, a.vote_score) for a in parse_observation(raw).annotations] == [(12, 13, -2)]
    raw["annotations"] = [{"controlled_attribute_id": "twelve", "controlled_value_id": 13}]
    with pytest.raises(ValueError, match="controlled_attribute_id"):
        parse_observation(raw)


def test_plant_observations_embedded_in_identifications() -> None:
    for ident in load("get_identifications.json")["results"]:
        raw = ident["observation"]
        raw.setdefault("user", ident["user"])
        o = parse_observation(raw)
        assert o.is_plant and len(o.photos) == 2 and o.taxon is not None
        assert 47126 in o.taxon.ancestor_ids  # Plantae


def test_taxon_samples() -> None:
    t = parse_taxon(load("get_taxa_by_id_conservation_statuses.json")["results"][0])
    assert t is not None and t.name == "Babiana villosula" and t.iconic_taxon_name == "Plantae"
    assert t.ancestor_ids[-1] == t.id == 580933
    assert [parse_taxon(x).name for x in load("get_taxa.json")["results"][:2]] == [  # type: ignore[union-attr]
        "Nicrophorus vespilloides", "Nicrophorus vespillo"]


def test_empty_page() -> None:
    assert parse_results(load("get_nonexistent_observation.json")) == ([], [], 0)


def test_legacy_list() -> None:
    (raw,) = load("get_observations.json")
    o = parse_legacy_observation(raw)
    assert o.id == 16227955 and o.user.id == 886482 and o.user.login == "niconoe"
    assert [p.id for p in o.photos] == [24355313, 24355315]
    assert o.photos[0].url.startswith("https://static.inaturalist.org/photos/24355313/medium.jpeg")
    assert o.taxon is not None and o.taxon.ancestor_ids[-1] == 493595 and o.taxon.ancestor_ids[0] == 48460
    assert o.iconic_taxon_name == "Insecta" and o.community_taxon_id == 493595
    assert o.quality_grade == "research" and o.captive is False


def test_rejections_name_the_field() -> None:
    raw = load("get_observation.json")["results"][0]
    bad = copy.deepcopy(raw)
    bad["observation_photos"][1]["photo"]["url"] = 42
    result = safe_parse(bad, parse_observation)
    assert isinstance(result, Rejected) and result.observation_id == 16227955
    assert "observation_photos[1].photo.url" in result.reason
    obs, rejected, last_id = parse_results({"results": [bad, raw, "junk", {"id": "x"}]})
    assert [o.id for o in obs] == [16227955] and len(rejected) == 3 and last_id == 16227955


# --- property-based: mutated real JSON parses or is rejected, never raises ------------------------------

SAMPLES = [
    load("get_observations_v1_page1.json")["results"][0],
    load("get_observation_with_ofvs.json")["results"][0],
    load("get_observation.json")["results"][0],
]
LEGACY = load("get_observations.json")[0]
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True),
                 st.text(max_size=5), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                           st.integers(), max_size=2))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


PATHS = {id(s): _paths(s) for s in [*SAMPLES, LEGACY]}


@st.composite
def mutated(draw: st.DrawFn, sample: Any) -> Any:
    doc = copy.deepcopy(sample)
    paths = PATHS[id(sample)]
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["drop", "null", "junk"]))
            if action == "drop" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif action == "null":
                parent[path[-1]] = None
            else:
                parent[path[-1]] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return doc


def _check(result: Observation | Rejected) -> None:
    if isinstance(result, Rejected):
        assert result.reason and isinstance(result.reason, str)
        assert not result.reason.startswith("unparseable"), result.reason  # handled, not a parser crash
    else:
        assert isinstance(result.id, int) and all(isinstance(p.url, str) for p in result.photos)
        assert [p.position for p in result.photos] == sorted(p.position for p in result.photos)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES).flatmap(mutated))
def test_mutated_v1_observations_parse_or_reject(doc: Any) -> None:
    _check(safe_parse(doc, parse_observation))
    obs, rejected, _ = parse_results({"results": [doc, doc]})
    assert len(obs) + len(rejected) == 2


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(LEGACY))
def test_mutated_legacy_observations_parse_or_reject(doc: Any) -> None:
    _check(safe_parse(doc, parse_legacy_observation))


@pytest.mark.parametrize("doc", [None, [], "x", {"results": None}, {"results": "x"}, {}])
def test_page_level_garbage_is_a_parse_error(doc: Any) -> None:
    from bot.platforms.parse_v1 import ParseError

    with pytest.raises(ParseError):
        parse_results(doc)


def test_card_context_fields_from_the_real_sample() -> None:
    """Date and time observed, place, coordinates with accuracy and description (the review card)."""
    raw = load("get_observation.json")["results"][0]
    obs = parse_observation(raw)
    assert obs.observed_at is not None and obs.observed_at.isoformat() == "2018-09-05T14:06:00+02:00"
    assert obs.place_guess == "54 rue des Badauds"
    assert (obs.latitude, obs.longitude, obs.positional_accuracy) == (50.646894, 4.360086, 23)
    assert obs.description is None  # "" means none
    odd = parse_observation({**raw, "location": "95,200", "positional_accuracy": "x", "description": " Note "})
    assert (odd.latitude, odd.longitude, odd.positional_accuracy, odd.description) == (None, None, None, "Note")
