"""The v1 adapter against the simulator: paging, filters, cache, auth, writes, dry-run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Secrets
from bot.errors import AuthError, PlatformError
from bot.platforms import create_platform
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from tests.platforms.conftest import BOT_LOGIN, SPECIES_A, SPECIES_B, grant_secrets, make_config, make_world


def test_polls_every_plant_once_oldest_first_with_id_above(sim_factory: Callable[..., SimServer],
                                                            tmp_path: Path) -> None:
    sim = sim_factory(make_world(n_plants=450, n_insects=5))
    platform = create_platform(make_config(tmp_path, sim), Secrets())
    pages = list(platform.get_new_observations(0))
    ids = [o.id for page in pages for o in page.observations]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 450
    assert [len(p.observations) for p in pages] == [200, 200, 50]
    assert [p.last_id for p in pages] == [1199, 1399, 1449]
    assert all(o.is_plant and o.photos for page in pages for o in page.observations)
    polls = [r for r in sim.requests if r.path == "/v1/observations"]
    assert [r.query["id_above"] for r in polls] == [["0"], ["1199"], ["1399"]]
    q = polls[0].query
    assert (q["iconic_taxa"], q["photos"], q["order_by"], q["order"], q["per_page"]) == (
        ["Plantae"], ["true"], ["id"], ["asc"], ["200"])
    # the cursor: a later poll from the last id sees only what is new
    assert list(platform.get_new_observations(1449)) == []
    assert [o.id for p in platform.get_new_observations(1440) for o in p.observations] == list(range(1441, 1450))


def test_no_response_cache_and_user_agent(sim: SimServer, tmp_path: Path) -> None:
    platform = create_platform(make_config(tmp_path, sim), Secrets())
    first = [o.id for p in platform.get_new_observations(0) for o in p.observations]
    sim.world.observations[1000].deleted = True
    second = [o.id for p in platform.get_new_observations(0) for o in p.observations]
    assert first[0] == 1000 and second[0] == 1001  # the second poll asked the server again
    assert len(list(platform.session.cache.responses.keys())) == 0
    assert not (tmp_path / "http-cache.sqlite3").exists()
    agents = {r.headers.get("user-agent") for r in sim.requests}
    assert agents == {"PlantBot/0.1.0 (+ops@example.org)"}


def test_filters_are_sent_and_applied(sim: SimServer, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, sim, place_id=7, project_id=3, quality_grade="needs_id", site_id=1)
    platform = create_platform(cfg, Secrets())
    got = [o.id for p in platform.get_new_observations(0) for o in p.observations]
    q = sim.requests[-1].query
    assert (q["place_id"], q["project_id"], q["quality_grade"], q["site_id"]) == (["7"], ["3"], ["needs_id"], ["1"])
    world = sim.world.observations
    assert got == [i for i in sorted(world) if 7 in world[i].place_ids and 3 in world[i].project_ids
                   and world[i].taxon_id != 200001]
    assert got  # the world has such observations


def test_reads_by_id_taxa_and_identifications(sim: SimServer, tmp_path: Path) -> None:
    platform = create_platform(make_config(tmp_path, sim), Secrets())
    got = platform.get_observations(list(range(1000, 1040)) + [999999])
    assert sorted(o.id for o in got) == list(range(1000, 1012))  # 10 plants + 2 insects exist
    assert sum(1 for r in sim.requests if r.path.startswith("/v1/observations/")) == 2  # 30 ids a request
    taxon = platform.get_taxon(SPECIES_B)
    assert taxon is not None and taxon.name == "Fakea nigra" and taxon.ancestor_ids[-1] == SPECIES_B
    assert platform.get_taxon(424242) is None
    assert [t.id for t in platform.search_taxa("Fakea", "species")] == [SPECIES_A, SPECIES_B]
    found = platform.autocomplete_taxa("fakea n", limit=5)
    assert [t.name for t in found] == ["Fakea nigra"] and found[0].ancestor_ids[-1] == SPECIES_B
    assert any(r.path == "/v1/taxa/autocomplete" for r in sim.requests)
    idents = platform.get_identifications(1001)
    assert [i.id for i in idents] == [90001] and idents[0].user.login == "alice"
    assert platform.get_comments(1001) == []


def test_password_grant_write_and_whoami(sim: SimServer, tmp_path: Path) -> None:
    platform = create_platform(make_config(tmp_path, sim), grant_secrets())
    token = platform.get_token()
    assert platform.get_current_user(token).login == BOT_LOGIN
    ident_id = platform.post_identification(token, 1002, SPECIES_B, "Suggested with a model, checked by a person")
    comment_id = platform.post_comment(token, 1002, "Perhaps genus Fakea")
    assert ident_id > 0 and comment_id > 0
    posted = [r for r in sim.writes if r.path == "/v1/identifications"]
    assert posted[0].json == {"identification": {"observation_id": 1002, "taxon_id": SPECIES_B,
                                                 "body": "Suggested with a model, checked by a person"}}
    assert posted[0].headers["authorization"] == f"Bearer {token}"
    assert [r.json for r in sim.writes if r.path == "/v1/comments"] == [
        {"comment": {"parent_type": "Observation", "parent_id": 1002, "body": "Perhaps genus Fakea"}}]
    platform.update_identification(token, ident_id, current=False)
    mine = [i for i in platform.get_identifications(1002) if i.id == ident_id]
    assert mine and mine[0].current is False
    assert [r.path for r in sim.requests[:2]] == ["/oauth/token", "/users/api_token"]


def test_expired_jwt_is_renewed_once_after_401(sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    now = [1_000_000.0]
    sim = sim_factory(clock=lambda: now[0], jwt_ttl=3600.0)
    platform = create_platform(make_config(tmp_path, sim), grant_secrets())
    token = platform.get_token()
    now[0] += 3601  # the server's clock: the JWT is now expired, the client does not know yet
    ident_id = platform.post_identification(token, 1003, SPECIES_A, "x")
    assert ident_id > 0
    statuses = [(r.path, r.status) for r in sim.requests if r.path in ("/v1/identifications", "/users/api_token")]
    assert statuses == [("/users/api_token", 200), ("/v1/identifications", 401),
                        ("/users/api_token", 200), ("/v1/identifications", 200)]
    assert platform.get_token() != token


def test_jwt_renewed_before_its_end(sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    now = [2_000_000.0]
    sim = sim_factory(clock=lambda: now[0])
    platform = create_platform(make_config(tmp_path, sim), grant_secrets(), clock=lambda: now[0])
    first = platform.get_token()
    assert platform.get_token() == first
    exchanges = sum(r.path == "/users/api_token" for r in sim.requests)
    now[0] += 23.5 * 3600  # within the last hour of the 24 h
    platform.get_token()
    assert sum(r.path == "/users/api_token" for r in sim.requests) == exchanges + 1


def test_refused_static_token_is_one_clear_error(sim: SimServer, tmp_path: Path) -> None:
    bad = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoyfQ.bad"
    platform = create_platform(make_config(tmp_path, sim), Secrets(api_token=bad))
    with pytest.raises(AuthError, match="PLANTBOT_API_TOKEN"):
        platform.post_comment(platform.get_token(), 1001, "hello")
    assert sum(r.path == "/v1/comments" for r in sim.requests) == 1  # not retried in a loop
    with pytest.raises(AuthError, match="no credentials"):
        create_platform(make_config(tmp_path, sim), Secrets()).get_token()


def test_dry_run_sends_no_write(sim: SimServer, tmp_path: Path) -> None:
    jwt = sim.issue_jwt(BOT_LOGIN)
    platform = create_platform(make_config(tmp_path, sim), Secrets(api_token=jwt), dry_run=True)
    assert platform.dry_run
    assert platform.post_identification(jwt, 1001, SPECIES_A, "x") == 0
    assert platform.post_comment(jwt, 1001, "x") == 0
    platform.update_identification(jwt, 90001, current=False)
    pages = list(platform.get_new_observations(0))  # reads still work
    assert pages and sim.writes == []
    with pytest.raises(AuthError, match="dry-run"):  # the password grant is a POST too
        create_platform(make_config(tmp_path, sim), grant_secrets(), dry_run=True).get_token()
    assert [r for r in sim.requests if r.method != "GET"] == []


def test_html_instead_of_json_is_one_line_error(sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    sim = sim_factory(faults=FaultPlan([FaultRule("GET /v1/observations", "html")]))
    platform = create_platform(make_config(tmp_path, sim), Secrets())
    with pytest.raises(PlatformError) as err:
        list(platform.get_new_observations(0))
    assert "expected JSON, got text/html" in str(err.value) and "\n" not in str(err.value)


def test_credentials_and_tokens_never_reach_the_logs(sim: SimServer, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    secrets = grant_secrets()
    platform = create_platform(make_config(tmp_path, sim), secrets)
    token = platform.get_token()
    platform.post_comment(token, 1002, "Perhaps genus Fakea")
    logged = caplog.text
    assert caplog.records  # the requests were logged at all
    for secret in (token, secrets.password, secrets.app_secret):
        assert secret and secret not in logged
