"""The simulator's API v1 reads: paging, filters, shapes against the real samples, taxa, photos."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import requests
from PIL import Image
from pyinaturalist import ClientSession, Observation, Taxon

from bot.sim.model import SimComment, World
from bot.sim.server import SimServer
from tests.sim.simtiny import (
    APIS,
    BIG,
    BROKEN,
    CANINA,
    N_PLANTS,
    PLANTAE,
    ROSA,
    ROSACEAE,
    SMALL,
    SQUARE,
    VISIBLE_PLANTS_WITH_PHOTOS,
)

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures"
POLL = {"iconic_taxa": "Plantae", "photos": "true", "order_by": "id", "order": "asc", "per_page": 200}


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def get(sim: SimServer, path: str, **params: Any) -> Any:
    response = requests.get(f"{sim.api_url}{path}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page: dict[str, Any]) -> list[int]:
    return [o["id"] for o in page["results"]]


def test_paging_with_id_above_walks_every_visible_plant_once(sim: SimServer) -> None:
    seen: list[int] = []
    sizes = []
    cursor = 0
    while True:
        page = get(sim, "/observations", **POLL, id_above=cursor)
        if not page["results"]:
            break
        sizes.append(len(page["results"]))
        seen += ids(page)
        cursor = seen[-1]
    assert seen == VISIBLE_PLANTS_WITH_PHOTOS
    assert sizes == [200, len(VISIBLE_PLANTS_WITH_PHOTOS) - 200]
    first = get(sim, "/observations", **POLL)
    assert first["total_results"] == len(VISIBLE_PLANTS_WITH_PHOTOS)
    assert (first["page"], first["per_page"]) == (1, 200)


def test_page_numbers_default_order_and_per_page_cap(sim: SimServer) -> None:
    default = get(sim, "/observations")
    assert default["per_page"] == 30 and ids(default)[0] == N_PLANTS + 5  # newest first by default
    assert get(sim, "/observations", per_page=500)["per_page"] == 200
    page2 = get(sim, "/observations", iconic_taxa="Plantae", order="asc", per_page=10, page=2)
    assert ids(page2) == [11, 12, 13, 14, 15, 16, 18, 20, 21, 22]  # 17 deleted, 19 unreleased


def test_filters(sim: SimServer) -> None:
    def found(**params: Any) -> set[int]:
        return set(ids(get(sim, "/observations", per_page=200, order="asc", **params)))

    assert found(iconic_taxa="Insecta") == set(range(N_PLANTS + 1, N_PLANTS + 6))
    assert found(place_id=5, iconic_taxa="Plantae") == {i for i in range(1, 251) if i % 2 and i not in (17, 19)}
    assert found(project_id=7, id_below=41) == {4, 8, 12, 16, 20, 24, 28, 32, 36, 40}
    assert found(quality_grade="research", id_below=60) == {10, 20, 30, 40, 50}
    assert found(taxon_id=CANINA, id_below=12) == {1, 3, 5, 7, 9, 11}
    assert found(taxon_id=ROSA, id_below=6) == {1, 2, 3, 4, 5}  # a genus includes its species
    assert found(captive="true") == {7}
    assert found(id="1,2,17,19,251") == {1, 2, 251}  # deleted and unreleased stay invisible
    assert found(user_id="observer", id_below=4) == found(user_id=3, id_below=4) == {1, 2, 3}
    assert found(user_id=1) == set()
    assert 13 in found(id_below=15) and 13 not in found(id_below=15, photos="true")


def test_released_observation_appears_when_its_time_comes(world: World) -> None:
    now = [1000.0]
    with SimServer(world, clock=lambda: now[0]) as sim:
        assert get(sim, "/observations", id=19)["results"] == []
        now[0] += 3601
        assert ids(get(sim, "/observations", id=19)) == [19]


def test_show_observations_by_ids(sim: SimServer) -> None:
    assert ids(get(sim, "/observations/3,250")) == [3, 250]
    missing = get(sim, "/observations/17")
    assert missing == {**sample("get_nonexistent_observation.json"), "results": []}


def test_v1_observation_has_the_real_samples_keys(sim: SimServer, world: World) -> None:
    world.observations[3].comments.append(SimComment(id=1, user_id=2, body="Nice rose"))
    real = sample("get_observations_v1_page1.json")
    obs = get(sim, "/observations/3")["results"][0]
    assert set(real) == set(get(sim, "/observations/3"))
    ref = real["results"][0]
    assert set(obs) == set(ref)
    assert set(obs["photos"][0]) == set(ref["photos"][0])
    assert set(obs["observation_photos"][0]) == set(ref["observation_photos"][0])
    assert set(obs["identifications"][0]) == set(ref["identifications"][0])
    taxon, ref_taxon = obs["identifications"][0]["taxon"], ref["identifications"][0]["taxon"]
    assert set(taxon) == set(ref_taxon)
    assert set(taxon["ancestors"][0]) == set(ref_taxon["ancestors"][0])
    assert set(obs["user"]) <= set(ref["user"]) | {"preferences"}
    assert set(ref["taxon"]) == set(obs["taxon"])
    assert set(obs["comments"][0]) == set(ref["comments"][0])
    assert set(obs["identifications"][0]["user"]) == set(ref["identifications"][0]["user"])


def test_v1_observation_values(sim: SimServer) -> None:
    obs = get(sim, "/observations/3")["results"][0]
    assert obs["taxon"]["id"] == CANINA and obs["taxon"]["iconic_taxon_name"] == "Plantae"
    assert obs["taxon"]["ancestor_ids"] == [PLANTAE, ROSACEAE, ROSA, CANINA]
    assert obs["taxon"]["ancestry"] == f"{PLANTAE}/{ROSACEAE}/{ROSA}"
    taxon = obs["taxon"]
    assert (taxon["rank"], taxon["rank_level"], taxon["iconic_taxon_id"]) == ("species", 10, PLANTAE)
    assert [p["position"] for p in obs["observation_photos"]] == [0, 1]
    assert [p["photo"]["id"] for p in obs["observation_photos"]] == [BIG, SMALL]
    assert obs["photos"][0]["url"] == f"{sim.url}/photos/{BIG}/square.jpg?1700000000"
    assert obs["photos"][0]["original_dimensions"] == {"width": 600, "height": 400}
    ident = obs["identifications"][0]
    assert (ident["user"]["login"], ident["current"], ident["vision"]) == ("observer", True, False)
    assert ident["taxon_id"] == CANINA
    assert ident["taxon"]["ancestor_ids"] == [PLANTAE, ROSACEAE, ROSA]
    assert (obs["user"]["id"], obs["user"]["login"]) == (3, "observer")
    assert (obs["quality_grade"], obs["captive"]) == ("needs_id", False)


def test_taxa_show_and_search(sim: SimServer) -> None:
    taxon = get(sim, f"/taxa/{CANINA}")["results"][0]
    assert set(taxon) == set(sample("get_taxa_by_id.json")["results"][0])
    assert [a["name"] for a in taxon["ancestors"]] == ["Plantae", "Rosaceae", "Rosa"]
    assert set(taxon["ancestors"][0]) == set(sample("get_taxa_by_id.json")["results"][0]["ancestors"][0])
    assert set(taxon["children"][0] if taxon["children"] else {}) <= set(taxon["ancestors"][0])
    genus = get(sim, f"/taxa/{ROSA}")["results"][0]
    assert sorted(c["id"] for c in genus["children"]) == [CANINA, CANINA + 1]
    assert [t["name"] for t in get(sim, "/taxa", q="rosa", rank="species")["results"]] == [
        "Rosa canina", "Rosa rubiginosa"]
    assert set(get(sim, "/taxa", q="rosa")["results"][0]) == set(sample("get_taxa.json")["results"][0])
    auto = get(sim, "/taxa/autocomplete", q="Apis")["results"]
    assert [t["id"] for t in auto] == [APIS]
    assert set(auto[0]) == set(sample("get_taxa_autocomplete.json")["results"][0])


def image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_photos_in_every_size_word(sim: SimServer, world: World) -> None:
    url = get(sim, "/observations/3")["results"][0]["photos"][0]["url"]
    for word, expected in {"square": (75, 75), "thumb": (100, 67), "small": (240, 160),
                           "medium": (500, 333), "large": (600, 400), "original": (600, 400)}.items():
        response = requests.get(url.replace("/square.", f"/{word}."), timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
        assert image(response.content).size == expected, word
    assert requests.get(url.replace("/square.", "/large."), timeout=10).content == world.photos[BIG]


def test_photos_that_fit_are_served_byte_identical(sim: SimServer, world: World) -> None:
    for word in ("small", "medium", "large", "original"):
        data = requests.get(f"{sim.url}/photos/{SMALL}/{word}.jpeg?1", timeout=10).content
        assert data == world.photos[SMALL]
    assert requests.get(f"{sim.url}/photos/{SQUARE}/square.jpg", timeout=10).content == world.photos[SQUARE]
    assert image(requests.get(f"{sim.url}/photos/{SMALL}/square.jpg", timeout=10).content).size == (75, 75)
    assert requests.get(f"{sim.url}/photos/{BROKEN}/medium.jpg", timeout=10).content == world.photos[BROKEN]
    assert requests.get(f"{sim.url}/photos/999/medium.jpg", timeout=10).status_code == 404
    assert requests.get(f"{sim.url}/photos/{SMALL}/huge.jpg", timeout=10).status_code == 404


def test_unknown_routes_get_json_404_and_every_request_is_logged(sim: SimServer) -> None:
    response = requests.get(f"{sim.api_url}/nothing/here", params={"a": "1"}, timeout=10)
    assert response.status_code == 404 and response.json()["error"]
    assert requests.delete(f"{sim.api_url}/observations", timeout=10).status_code == 405
    logged = sim.requests[-2]
    assert (logged.method, logged.path, logged.query, logged.status) == ("GET", "/v1/nothing/here", {"a": ["1"]}, 404)
    assert [r.method for r in sim.writes] == ["DELETE"]


def test_pyinaturalist_reads_the_simulator(sim: SimServer, tmp_path: Path) -> None:
    """The real client (its session and its models) understands what the simulator serves."""
    session = ClientSession(cache_file=tmp_path / "cache.sqlite", cache_control=False, expire_after=0,
                            ratelimit_path=str(tmp_path / "rate.db"), lock_path=str(tmp_path / "rate.lock"),
                            per_second=50, per_minute=3000, per_day=100000)
    params: dict[str, Any] = {"iconic_taxa": "Plantae", "order": "asc", "order_by": "id", "per_page": 3,
                              "id_above": 2}
    page = session.request("GET", f"{sim.api_url}/observations", **params).json()
    parsed = [Observation.from_json(o) for o in page["results"]]
    assert [o.id for o in parsed] == [3, 4, 5]
    assert parsed[0].taxon.id == CANINA and [p.id for p in parsed[0].photos] == [BIG, SMALL]
    assert parsed[0].photos[0].medium_url == f"{sim.url}/photos/{BIG}/medium.jpg?1700000000"
    assert [i.user.login for i in parsed[0].identifications] == ["observer"]
    taxon = Taxon.from_json(session.request("GET", f"{sim.api_url}/taxa/{CANINA}").json()["results"][0])
    assert [a.name for a in taxon.ancestors] == ["Plantae", "Rosaceae", "Rosa"]
