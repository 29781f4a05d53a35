"""The legacy Rails flavor (independent forks) against the simulator's /observations.json routes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Secrets
from bot.errors import AuthError
from bot.platforms import create_platform
from bot.sim.server import SimServer
from tests.platforms.conftest import (
    BOT_LOGIN,
    GENUS,
    PLANTAE,
    SPECIES_A,
    SPECIES_B,
    grant_secrets,
    make_config,
    make_world,
)

Factory = Callable[..., SimServer]


def _legacy(tmp_path: Path, sim: SimServer, secrets: Secrets | None = None, **kw: object) -> object:
    return create_platform(make_config(tmp_path, sim, flavor="legacy", **kw), secrets or Secrets())


def test_walks_newest_first_pages_and_yields_oldest_first(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(make_world(n_plants=450, n_insects=3))
    platform = _legacy(tmp_path, sim)
    assert platform.name == f"legacy:{sim.url}"  # type: ignore[attr-defined]
    pages = list(platform.get_new_observations(1100))  # type: ignore[attr-defined]
    ids = [o.id for p in pages for o in p.observations]
    assert ids == list(range(1101, 1450))
    assert [p.last_id for p in pages] == [1300, 1449]  # the cursor advances page by page, oldest first
    listed = [r for r in sim.requests if r.path == "/observations.json"]
    assert [r.query["page"] for r in listed] == [["1"], ["2"]]  # page 2 reaches the cursor: stop
    q = listed[0].query
    assert (q["has[]"], q["iconic_taxa[]"], q["per_page"]) == (["photos"], ["Plantae"], ["200"])
    o = pages[0].observations[0]
    assert o.user.login == "alice" and o.is_plant and o.photos[0].url.endswith(".jpeg?1700000000")
    assert "/medium." in o.photos[0].url
    assert o.taxon is not None and o.taxon.ancestor_ids[-1] == o.taxon.id
    assert list(platform.get_new_observations(1449)) == []  # type: ignore[attr-defined]


def test_reads_by_id(sim: SimServer, tmp_path: Path) -> None:
    platform = _legacy(tmp_path, sim)
    got = platform.get_observations([1001, 1003, 99999])  # type: ignore[attr-defined]
    assert [o.id for o in got] == [1001, 1003]
    assert [i.id for i in platform.get_identifications(1001)] == [90001]  # type: ignore[attr-defined]
    assert [t.id for t in platform.search_taxa("Fakea", "species")] == [SPECIES_A, SPECIES_B]  # type: ignore
    assert [t.name for t in platform.autocomplete_taxa("fakea n")] == ["Fakea nigra"]  # type: ignore


def test_observation_fields_come_with_lists_and_reads_by_id(sim: SimServer, tmp_path: Path) -> None:
    """The Rails list adds observation_field_values only when asked (`extra=fields`): without them a fork's
    opt-out field would go unseen before posting, and `dataset from-platform` could not tag habit photos."""
    import requests

    with sim.lock:
        sim.world.observations[1002].ofvs["PlantBot"] = "no"
    platform = _legacy(tmp_path, sim)
    [read] = platform.get_observations([1002])  # type: ignore[attr-defined]
    assert read.field_values == {"PlantBot": "no"}
    listed = [o for p in platform.get_new_observations(1000) for o in p.observations]  # type: ignore[attr-defined]
    assert next(o for o in listed if o.id == 1002).field_values == {"PlantBot": "no"}
    bare = requests.get(f"{sim.url}/observations.json", params={"id[]": 1002}, timeout=10).json()
    assert "observation_field_values" not in bare[0]


def test_taxon_lookup_search_and_ancestry(sim: SimServer, tmp_path: Path) -> None:
    """What editing a proposal's taxon, `labels resolve` and `dataset from-platform` rely on."""
    platform = _legacy(tmp_path, sim)
    taxon = platform.get_taxon(SPECIES_B)  # type: ignore[attr-defined]
    assert (taxon.id, taxon.name, taxon.rank) == (SPECIES_B, "Fakea nigra", "species")
    assert taxon.ancestor_ids == (PLANTAE, GENUS, SPECIES_B) and taxon.is_within(PLANTAE)
    genus = platform.get_taxon(taxon.ancestor_ids[-2])  # type: ignore[attr-defined]
    assert (genus.name, genus.rank) == ("Fakea", "genus")
    assert platform.get_taxon(999999) is None  # type: ignore[attr-defined]
    found = platform.search_taxa("Fakea nigra", "species")  # type: ignore[attr-defined]
    assert [(t.id, t.ancestor_ids) for t in found] == [(SPECIES_B, (PLANTAE, GENUS, SPECIES_B))]
    assert [t.id for t in platform.search_taxa("fakea", "genus")] == [GENUS]  # type: ignore[attr-defined]
    paths = [r.path for r in sim.requests]
    assert f"/taxa/{SPECIES_B}.json" in paths and "/taxa/search.json" in paths


def test_batched_reads_by_id_with_identifications(sim: SimServer, tmp_path: Path) -> None:
    platform = _legacy(tmp_path, sim)
    got = platform.get_observations(list(range(1000, 1010)) + [99999])  # type: ignore[attr-defined]
    assert sorted(o.id for o in got) == [i for i in range(1000, 1010) if i in sim.world.observations]
    listed = [r for r in sim.requests if r.path == "/observations.json"]
    assert len(listed) == 1 and len(listed[0].query["id[]"]) == 11
    assert {o.id: [i.id for i in o.identifications] for o in got}[1001] == [90001]
    assert platform.requests_sent == len(sim.requests)  # type: ignore[attr-defined]


def test_password_grant_form_writes_and_whoami(sim: SimServer, tmp_path: Path) -> None:
    platform = _legacy(tmp_path, sim, grant_secrets())
    token = platform.get_token()  # type: ignore[attr-defined]
    assert platform.get_current_user(token).login == BOT_LOGIN  # type: ignore[attr-defined]
    ident = platform.post_identification(token, 1004, SPECIES_B, "checked")  # type: ignore[attr-defined]
    comment = platform.post_comment(token, 1004, "genus?")  # type: ignore[attr-defined]
    platform.update_identification(token, ident, current=False)  # type: ignore[attr-defined]
    assert ident > 0 and comment > 0
    writes = sim.writes
    assert [(r.method, r.path) for r in writes] == [
        ("POST", "/identifications.json"), ("POST", "/comments.json"), ("PUT", f"/identifications/{ident}.json")]
    assert "x-www-form-urlencoded" in writes[0].headers["content-type"]
    assert writes[0].json == {"identification": {"observation_id": "1004", "taxon_id": str(SPECIES_B),
                                                 "body": "checked"}}
    assert writes[1].json == {"comment": {"parent_type": "Observation", "parent_id": "1004", "body": "genus?"}}
    assert not [i for i in platform.get_identifications(1004) if i.id == ident][0].current  # type: ignore
    assert not any(r.path == "/users/api_token" for r in sim.requests)  # OAuth token used as is


def test_static_oauth_token_and_dry_run(sim: SimServer, tmp_path: Path) -> None:
    token = sim.issue_access_token(BOT_LOGIN)
    platform = create_platform(make_config(tmp_path, sim, flavor="legacy"), Secrets(api_token=token),
                               dry_run=True)
    assert platform.get_token() == token
    assert platform.post_comment(token, 1001, "x") == 0
    assert sim.writes == []
    wrong = create_platform(make_config(tmp_path, sim, flavor="legacy"), Secrets(api_token="nope"))
    with pytest.raises(AuthError):
        wrong.get_current_user(wrong.get_token())


def test_a_poll_that_cannot_reach_the_cursor_reports_the_gap(sim_factory: Factory, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.platforms import legacy

    monkeypatch.setattr(legacy, "MAX_PAGES", 2)
    sim = sim_factory(make_world(n_plants=30, n_insects=0))
    platform = _legacy(tmp_path, sim, per_page=10)
    pages = list(platform.get_new_observations(0))  # type: ignore[attr-defined]
    assert [o.id for p in pages for o in p.observations] == list(range(1010, 1030))  # the newest 20
    gap = [r.reason for p in pages for r in p.rejected]
    assert len(gap) == 1 and "between id 0 and 1010" in gap[0]


def test_a_short_page_does_not_end_the_walk_before_the_cursor(sim_factory: Factory, tmp_path: Path) -> None:
    sim = sim_factory(make_world(n_plants=25, n_insects=0))
    platform = _legacy(tmp_path, sim, per_page=10)
    ids = [o.id for p in platform.get_new_observations(0) for o in p.observations]  # type: ignore[attr-defined]
    assert ids == list(range(1000, 1025))
    listed = [r.query["page"] for r in sim.requests if r.path == "/observations.json"]
    assert listed == [["1"], ["2"], ["3"], ["4"]]  # page 3 held 5, page 4 was empty: the end
