"""Writes and sign-in on the simulator: JWT checks, identifications and comments, OAuth with PKCE."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import urllib.parse
from pathlib import Path

import requests

from bot.sim.model import World
from bot.sim.server import SimServer
from tests.sim.simtiny import CANINA, ROSA, RUBIGINOSA

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures"


def post_id(sim: SimServer, token: str | None, obs_id: int = 5, taxon_id: int = RUBIGINOSA,
            body: str = "A model helped") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    payload = {"identification": {"observation_id": obs_id, "taxon_id": taxon_id, "body": body}}
    return requests.post(f"{sim.api_url}/identifications", json=payload, headers=headers, timeout=10)


def test_identification_needs_a_valid_unexpired_jwt(world: World) -> None:
    now = [5000.0]
    with SimServer(world, clock=lambda: now[0], jwt_ttl=60.0) as sim:
        assert post_id(sim, None).status_code == 401
        assert post_id(sim, "not-a-jwt").status_code == 401
        jwt = sim.issue_jwt("moderator")
        head, claims, _ = jwt.split(".")
        forged = f"{head}.{claims}.{base64.urlsafe_b64encode(b'x' * 32).rstrip(b'=').decode()}"
        assert post_id(sim, forged).status_code == 401
        assert post_id(sim, sim.issue_access_token("moderator")).status_code == 401  # v1 wants the JWT
        payload = json.loads(base64.urlsafe_b64decode(claims + "=="))
        assert (payload["user_id"], payload["login"], payload["exp"]) == (2, "moderator", 5060)
        now[0] += 61
        expired = post_id(sim, jwt)
        assert expired.status_code == 401 and "error" in expired.json()
        assert world.observations[5].identifications[-1].user_id == 3  # nothing stored
        assert post_id(sim, sim.issue_jwt("moderator")).status_code == 200


def test_posted_identification_is_stored_and_served(sim: SimServer, world: World) -> None:
    jwt = sim.issue_jwt("moderator")
    first = post_id(sim, jwt, taxon_id=ROSA)
    assert first.status_code == 200
    second = post_id(sim, jwt, taxon_id=RUBIGINOSA)
    created = second.json()
    assert (created["observation_id"], created["taxon_id"], created["user"]["login"]) == (5, RUBIGINOSA, "moderator")
    assert (created["current"], created["vision"], created["body"]) == (True, False, "A model helped")
    assert created["id"] != first.json()["id"] and created["uuid"]
    obs = requests.get(f"{sim.api_url}/observations/5", timeout=10).json()["results"][0]
    mine = [(i["taxon_id"], i["current"]) for i in obs["identifications"] if i["user"]["login"] == "moderator"]
    assert mine == [(ROSA, False), (RUBIGINOSA, True)]  # the earlier one is no longer current
    found = requests.get(f"{sim.api_url}/identifications",
                         params={"observation_id": 5, "user_id": 2}, timeout=10).json()
    assert [r["id"] for r in found["results"]] == [created["id"]]
    assert found["results"][0]["observation"]["id"] == 5
    everything = requests.get(f"{sim.api_url}/identifications",
                              params={"observation_id": "5", "user_id": "moderator", "current": "any"}, timeout=10)
    assert len(everything.json()["results"]) == 2
    assert [w.json["identification"]["taxon_id"] for w in sim.writes] == [ROSA, RUBIGINOSA]
    assert sim.writes[0].headers["authorization"] == f"Bearer {jwt}"


def test_bad_identifications_are_422_and_store_nothing(sim: SimServer, world: World) -> None:
    jwt = sim.issue_jwt("moderator")
    assert post_id(sim, jwt, obs_id=9999).status_code == 422
    assert post_id(sim, jwt, obs_id=17).status_code == 422  # deleted
    assert post_id(sim, jwt, taxon_id=424242).status_code == 422
    bad = requests.post(f"{sim.api_url}/identifications", json={"observation_id": 5},
                        headers={"Authorization": f"Bearer {jwt}"}, timeout=10)
    assert bad.status_code == 422 and bad.json()["error"]
    assert all(i.user_id == 3 for o in world.observations.values() for i in o.identifications)


def test_withdraw_only_your_own_identification(sim: SimServer, world: World) -> None:
    created = post_id(sim, sim.issue_jwt("moderator")).json()
    url = f"{sim.api_url}/identifications/{created['id']}"
    withdraw = {"identification": {"current": False}}
    other = requests.put(url, json=withdraw, headers={"Authorization": f"Bearer {sim.issue_jwt('plantbot')}"},
                         timeout=10)
    assert other.status_code == 403
    mine = requests.put(url, json=withdraw, headers={"Authorization": f"Bearer {sim.issue_jwt('moderator')}"},
                        timeout=10)
    assert mine.status_code == 200 and mine.json()["current"] is False
    assert world.observations[5].identifications[-1].current is False


def test_comments_and_users_me(sim: SimServer, world: World) -> None:
    jwt = sim.issue_jwt("plantbot")
    payload = {"comment": {"parent_type": "Observation", "parent_id": 8, "body": "Probably genus Rosa"}}
    assert requests.post(f"{sim.api_url}/comments", json=payload, timeout=10).status_code == 401
    created = requests.post(f"{sim.api_url}/comments", json=payload, headers={"Authorization": f"Bearer {jwt}"},
                            timeout=10)
    assert created.status_code == 200 and created.json()["body"] == "Probably genus Rosa"
    assert [(c.user_id, c.body) for c in world.observations[8].comments] == [(1, "Probably genus Rosa")]
    obs = requests.get(f"{sim.api_url}/observations/8", timeout=10).json()["results"][0]
    assert obs["comments"][0]["user"]["login"] == "plantbot" and obs["comments_count"] == 1
    me = requests.get(f"{sim.api_url}/users/me", headers={"Authorization": f"Bearer {jwt}"}, timeout=10).json()
    assert me["results"][0]["login"] == "plantbot"
    assert requests.get(f"{sim.api_url}/users/me", timeout=10).status_code == 401


def test_password_grant_then_api_token(sim: SimServer) -> None:
    form = {"grant_type": "password", "client_id": "app", "client_secret": "s3cret",
            "username": "moderator", "password": "modpass"}
    token = requests.post(f"{sim.url}/oauth/token", json=form, timeout=10)
    assert token.status_code == 200
    assert set(json.loads((SAMPLES / "get_access_token.json").read_text())) <= set(token.json())
    assert token.json()["token_type"] == "Bearer"
    bad = requests.post(f"{sim.url}/oauth/token", data={**form, "password": "nope"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_grant"
    no_client = requests.post(f"{sim.url}/oauth/token", data={**form, "client_id": ""}, timeout=10)
    assert no_client.status_code == 401 and no_client.json()["error"] == "invalid_client"
    access = token.json()["access_token"]
    assert requests.get(f"{sim.url}/users/api_token", timeout=10).status_code == 401
    jwt = requests.get(f"{sim.url}/users/api_token", headers={"Authorization": f"Bearer {access}"},
                       timeout=10).json()["api_token"]
    assert post_id(sim, jwt).json()["user"]["login"] == "moderator"
    assert sim.writes[-1].path == "/v1/identifications" and len(sim.writes) == 1  # oauth is no write


def test_authorization_code_flow_with_pkce(sim: SimServer) -> None:
    sim.oauth_clients = {"review-ui": "ui-secret"}
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:9/callback"
    params = {"client_id": "review-ui", "redirect_uri": redirect, "response_type": "code",
              "code_challenge": challenge, "code_challenge_method": "S256", "state": "xyz"}
    page = requests.get(f"{sim.url}/oauth/authorize", params=params, timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert 'name="login"' in page.text and 'name="password"' in page.text and 'type="submit"' in page.text
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert hidden == params
    wrong = requests.post(f"{sim.url}/oauth/authorize", data={**hidden, "login": "moderator", "password": "x"},
                          allow_redirects=False, timeout=10)
    assert wrong.status_code == 200 and "Invalid login or password" in wrong.text and 'name="login"' in wrong.text
    signed = requests.post(f"{sim.url}/oauth/authorize", data={**hidden, "login": "moderator", "password": "modpass"},
                           allow_redirects=False, timeout=10)
    assert signed.status_code == 302
    location = urllib.parse.urlsplit(signed.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect and query["state"] == ["xyz"]
    exchange = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect,
                "client_id": "review-ui", "client_secret": "ui-secret"}
    assert requests.post(f"{sim.url}/oauth/token", data={**exchange, "code_verifier": "wrong" * 10},
                         timeout=10).status_code == 401  # a wrong verifier also burns the code
    signed = requests.post(f"{sim.url}/oauth/authorize", data={**hidden, "login": "moderator", "password": "modpass"},
                           allow_redirects=False, timeout=10)
    exchange["code"] = urllib.parse.parse_qs(urllib.parse.urlsplit(signed.headers["Location"]).query)["code"][0]
    token = requests.post(f"{sim.url}/oauth/token", data={**exchange, "code_verifier": verifier}, timeout=10)
    assert token.status_code == 200
    again = requests.post(f"{sim.url}/oauth/token", data={**exchange, "code_verifier": verifier}, timeout=10)
    assert again.status_code == 401  # single use
    jwt = requests.get(f"{sim.url}/users/api_token",
                       headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=10).json()
    assert post_id(sim, jwt["api_token"], taxon_id=CANINA).status_code == 200
    unknown = requests.get(f"{sim.url}/oauth/authorize", params={**params, "client_id": "other"}, timeout=10)
    assert unknown.status_code == 400
