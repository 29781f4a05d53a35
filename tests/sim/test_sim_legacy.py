"""The simulator's legacy Rails flavor (what independent iNaturalist forks serve)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from bot.sim.model import World
from bot.sim.server import SimServer
from tests.sim.simtiny import PLANTAE, ROSA, ROSACEAE, RUBIGINOSA, VISIBLE_PLANTS_WITH_PHOTOS

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures"
LIST: dict[str, Any] = {"has[]": "photos", "iconic_taxa[]": "Plantae", "per_page": 200}


def real_observation() -> dict[str, Any]:
    return json.loads((SAMPLES / "get_observations.json").read_text(encoding="utf-8"))[0]


def test_list_shape_matches_the_real_legacy_sample(sim: SimServer) -> None:
    response = requests.get(f"{sim.url}/observations.json", params=LIST, timeout=10)
    page = response.json()
    assert isinstance(page, list) and len(page) == 200
    real = real_observation()
    obs = next(o for o in page if o["id"] == 249)
    assert set(obs) == set(real)
    assert set(obs["photos"][0]) == set(real["photos"][0])
    assert set(obs["taxon"]) == set(real["taxon"]) and set(obs["iconic_taxon"]) == set(real["iconic_taxon"])
    assert obs["taxon"]["ancestry"] == f"{PLANTAE}/{ROSACEAE}/{ROSA}"
    assert (obs["iconic_taxon_name"], obs["user_login"], obs["user_id"]) == ("Plantae", "observer", 3)
    assert obs["photos"][0]["medium_url"] == f"{sim.url}/photos/1/medium.jpeg?1700000000"
    assert requests.get(obs["photos"][0]["medium_url"], timeout=10).headers["Content-Type"] == "image/jpeg"


def test_pages_newest_first_with_total_entries(sim: SimServer) -> None:
    seen: list[int] = []
    for number in (1, 2, 3):
        response = requests.get(f"{sim.url}/observations.json", params={**LIST, "page": number}, timeout=10)
        assert response.headers["X-Total-Entries"] == str(len(VISIBLE_PLANTS_WITH_PHOTOS))
        seen += [o["id"] for o in response.json()]
    assert seen == sorted(VISIBLE_PLANTS_WITH_PHOTOS, reverse=True)
    ascending = requests.get(f"{sim.url}/observations.json",
                             params={**LIST, "order_by": "id", "order": "asc", "per_page": 3}, timeout=10).json()
    assert [o["id"] for o in ascending] == [1, 2, 3]


def test_form_writes_with_an_oauth_token(sim: SimServer, world: World) -> None:
    token = sim.issue_access_token("moderator")
    auth = {"Authorization": f"Bearer {token}"}
    form = {"identification[observation_id]": "6", "identification[taxon_id]": str(RUBIGINOSA),
            "identification[body]": "Reviewed by a person"}
    assert requests.post(f"{sim.url}/identifications.json", data=form, timeout=10).status_code == 401
    jwt_auth = {"Authorization": f"Bearer {sim.issue_jwt('moderator')}"}
    assert requests.post(f"{sim.url}/identifications.json", data=form, headers=jwt_auth, timeout=10).status_code == 401
    created = requests.post(f"{sim.url}/identifications.json", data=form, headers=auth, timeout=10)
    assert created.status_code == 200
    ident = created.json()
    assert (ident["observation_id"], ident["taxon_id"], ident["user"]["login"]) == (6, RUBIGINOSA, "moderator")
    assert sim.writes[-1].json == {"identification": {"observation_id": "6", "taxon_id": str(RUBIGINOSA),
                                                       "body": "Reviewed by a person"}}
    comment = {"comment[parent_type]": "Observation", "comment[parent_id]": "6", "comment[body]": "Genus Rosa?"}
    assert requests.post(f"{sim.url}/comments.json", data=comment, headers=auth, timeout=10).status_code == 200
    as_json = {"comment": {"parent_type": "Observation", "parent_id": 6, "body": "second"}}
    assert requests.post(f"{sim.url}/comments.json", json=as_json, headers=auth, timeout=10).status_code == 200
    withdraw = requests.put(f"{sim.url}/identifications/{ident['id']}.json",
                            data={"identification[current]": "false"}, headers=auth, timeout=10)
    assert withdraw.status_code == 200 and withdraw.json()["current"] is False
    shown = requests.get(f"{sim.url}/observations/6.json", timeout=10).json()
    assert [(i["user"]["login"], i["current"]) for i in shown["identifications"]] == [
        ("observer", True), ("moderator", False)]
    assert [c["body"] for c in shown["comments"]] == ["Genus Rosa?", "second"]
    assert [c.body for c in world.observations[6].comments] == ["Genus Rosa?", "second"]


def test_taxa_search_and_current_user(sim: SimServer) -> None:
    found = requests.get(f"{sim.url}/taxa/search.json", params={"q": "rubig"}, timeout=10).json()
    assert [t["id"] for t in found] == [RUBIGINOSA] and found[0]["ancestry"] == f"{PLANTAE}/{ROSACEAE}/{ROSA}"
    auth = {"Authorization": f"Bearer {sim.issue_access_token('plantbot')}"}
    assert requests.get(f"{sim.url}/users/edit.json", headers=auth, timeout=10).json()["login"] == "plantbot"
    assert requests.get(f"{sim.url}/users/edit.json", timeout=10).status_code == 401
    assert requests.get(f"{sim.url}/observations/17.json", timeout=10).status_code == 404


def test_taxon_show_in_the_forks_shape(sim: SimServer) -> None:
    shown = requests.get(f"{sim.url}/taxa/{RUBIGINOSA}.json", timeout=10)
    assert shown.status_code == 200
    taxon = shown.json()
    assert (taxon["id"], taxon["rank"], taxon["parent_id"]) == (RUBIGINOSA, "species", ROSA)
    assert taxon["ancestry"] == f"{PLANTAE}/{ROSACEAE}/{ROSA}"  # ids, root first, without itself
    assert "ancestors" not in taxon and taxon["default_name"]["name"] == taxon["name"]
    assert requests.get(f"{sim.url}/taxa/99999999.json", timeout=10).status_code == 404
    found = requests.get(f"{sim.url}/taxa/search.json", params={"q": "ros", "rank": "genus"}, timeout=10).json()
    assert [t["id"] for t in found] == [ROSA] and set(found[0]) == set(taxon)
