"""Hostile records at parse time: unusable ids are rejected with the raw value and the reason, a photo listed
twice is kept once, and an implausible id jump is refused rather than trusted as the next cursor."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.platforms.parse_legacy import parse_legacy_observation
from bot.platforms.parse_v1 import parse_results, plausible_ids

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def good() -> dict[str, Any]:
    doc = json.loads((FIXTURES / "get_observations_v1_page1.json").read_text(encoding="utf-8"))
    return copy.deepcopy(doc["results"][0])


@pytest.mark.parametrize(("raw", "word"), [
    ("1007.0", "integer"), (1007.0, "integer"), (True, "boolean"), (-5, "outside"), (0, "outside"),
    (2**53 + 1, "outside"), (9223372036854775807, "outside"), (2**64 + 7, "outside"), ("9" * 30, "integer"),
])
def test_an_unusable_id_is_rejected_with_its_raw_value(raw: Any, word: str) -> None:
    bad = {**good(), "id": raw}
    obs, rejected, last_id = parse_results({"results": [good(), bad]})
    assert [o.id for o in obs] == [57754375] and last_id == 57754375
    (r,) = rejected
    assert r.observation_id is None and r.raw_id == repr(raw)[:60] and word in r.reason.lower()


def test_an_unusable_photo_or_user_id_rejects_the_record_not_the_page() -> None:
    bad = good()
    bad["id"] = 57754376
    bad["observation_photos"][0]["photo"]["id"] = 2**64
    obs, rejected, _ = parse_results({"results": [good(), bad]})
    assert len(obs) == 1 and rejected[0].observation_id == 57754376 and "outside" in rejected[0].reason


def test_a_photo_listed_twice_is_kept_once() -> None:
    doc = good()
    doc["observation_photos"].append(copy.deepcopy(doc["observation_photos"][0]))
    doc["photos"].append(copy.deepcopy(doc["photos"][0]))
    (obs,), rejected, _ = parse_results({"results": [doc]})
    assert rejected == [] and [p.id for p in obs.photos] == [92152429]
    legacy = {"id": 5, "user_id": 1, "user_login": "a", "photos": [{"id": 9, "medium_url": "https://x/a.jpg"}] * 2}
    assert [p.id for p in parse_legacy_observation(legacy).photos] == [9]


def test_the_same_observation_twice_on_a_page_is_used_once() -> None:
    obs, rejected, _ = parse_results({"results": [good(), good()]})
    assert len(obs) == 1 and len(rejected) == 1 and "duplicate" in rejected[0].reason


def test_an_implausible_jump_is_refused_and_does_not_become_the_cursor() -> None:
    far = {**good(), "id": 57754375 + 10_000_001}
    obs, rejected, last_id = parse_results({"results": [good(), far]}, cursor=57754000, max_jump=10_000_000)
    assert [o.id for o in obs] == [57754375] and last_id == 57754375
    assert "suspicious" in rejected[0].reason and rejected[0].raw_id == str(57754375 + 10_000_001)
    assert plausible_ids(100, [150, 20_000_000, 160], 1000) == ([150, 160], {20_000_000})
    assert plausible_ids(0, [5_000_000_000], 1000) == ([5_000_000_000], set())  # no cursor yet: nothing to jump from
    assert plausible_ids(100, [10**12], 0) == ([10**12], set())  # 0 turns the check off
