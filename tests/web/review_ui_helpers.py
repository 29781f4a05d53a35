"""Helpers for the review UI tests: config, seeded proposals, the app, and the sign-in flow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient

from bot.config import Config, Secrets
from bot.sim.model import World
from bot.store.db import Store
from bot.store.models import DecisionRow, ObservationRow, PhotoRow, PredictionRow
from bot.web import create_app
from tests.platforms.conftest import make_config as platform_config

MODERATOR = "moderator"
OUTSIDER = "ana"
PASSWORD = "password"
BASE_TIME = datetime(2026, 3, 1, 12, 0, 0)
IDENT_PATH = {"inat-v1": "/v1/identifications", "legacy": "/identifications.json"}  # where each flavor posts


def observation_reads(sim: Any, flavor: str) -> list[list[int]]:
    """The by-id observation reads the simulator saw, each as its ids: v1 reads `/v1/observations/1,2,3`,
    a fork lists `/observations.json?id[]=1&id[]=2` (a single read `/observations/1.json` counts too)."""
    out: list[list[int]] = []
    for r in sim.requests:
        if r.method != "GET":
            continue
        if flavor == "inat-v1" and r.path.startswith("/v1/observations/"):
            out.append([int(i) for i in r.path.rsplit("/", 1)[1].split(",")])
        elif flavor == "legacy" and r.path == "/observations.json" and "id[]" in r.query:
            out.append([int(i) for i in r.query["id[]"]])
        elif flavor == "legacy" and r.path.startswith("/observations/") and r.path.endswith(".json"):
            out.append([int(r.path.rsplit("/", 1)[1].removesuffix(".json"))])
    return out


def form_fields(doc: Any) -> dict[str, str]:
    """A write's fields as text: v1 sends JSON numbers, a fork's Rails form sends strings."""
    return {key: str(value) for key, value in doc.items()}


def make_config(sim: Any, state_dir: Path, mode: str = "review",
                moderators: tuple[str, ...] = (MODERATOR,), flavor: str = "inat-v1") -> Config:
    cfg = platform_config(state_dir, sim, flavor=flavor, max_retries=0, timeout_seconds=10.0, photo_hosts=[],
                          contact="")
    cfg.posting.mode = mode
    cfg.review.moderators = list(moderators)
    cfg.review.oauth_client_id = "plantbot-review-test"
    cfg.review.page_size = 10
    return cfg


@dataclass
class Seeded:
    decision_ids: list[int]
    observation_ids: list[int]


def seed_proposals(store: Store, world: World, sim: Any, kinds: tuple[str, ...] = ("species", "genus", "species"),
                   scores: tuple[float, ...] | None = None) -> Seeded:
    """One proposal per kind on the world's first observations, the last one newest."""
    obs_ids = sorted(world.observations)[: len(kinds)]
    scores = scores or tuple(0.9 - 0.1 * i for i in range(len(kinds)))
    decision_ids: list[int] = []
    with store.session() as s:
        for i, (oid, kind, score) in enumerate(zip(obs_ids, kinds, scores, strict=True)):
            obs = world.observations[oid]
            species = [t for t in world.taxa.values() if t.rank == "species" and t.iconic_taxon_name == "Plantae"]
            species.sort(key=lambda t: t.id)
            top = species[i % len(species)]
            genus = world.taxa[top.parent_id or 0]
            family = world.taxa[genus.parent_id or 0]
            when = BASE_TIME + timedelta(minutes=i)
            s.add(ObservationRow(
                id=oid, platform="sim", user_id=obs.user_id, user_login=world.users[obs.user_id].login,
                taxon_id=obs.taxon_id, taxon_name=world.taxa[obs.taxon_id].name if obs.taxon_id else None,
                community_taxon_id=obs.community_taxon_id, iconic_taxon_name="Plantae",
                quality_grade=obs.quality_grade, uri=f"{sim.url}/observations/{oid}", n_photos=len(obs.photo_ids),
                first_seen_at=when, last_seen_at=when))
            s.flush()
            for pos, pid in enumerate(obs.photo_ids):
                s.add(PhotoRow(observation_id=oid, photo_id=pid, position=pos, status="ok",
                               url=f"{sim.url}/photos/{pid}/square.jpg?1"))
            chosen = {"species": top, "genus": genus, "family": family}[kind]
            d = DecisionRow(observation_id=oid, kind=kind, taxon_id=chosen.id, taxon_name=chosen.name,
                            rank=kind, score=score, reasons=[], n_photos=len(obs.photo_ids),
                            model_name="testnet", model_version="v1", cutoff=0.3, dry_run=False, mode="review",
                            status="proposed", created_at=when)
            s.add(d)
            s.flush()
            others = [t for t in species if t.id != top.id][:4]
            for pos, (t, p) in enumerate(zip([top, *others], (score, 0.05, 0.03, 0.02, 0.01), strict=False)):
                s.add(PredictionRow(decision_id=d.id, rank="species", position=pos, taxon_id=t.id, name=t.name,
                                    prob=p))
            s.add(PredictionRow(decision_id=d.id, rank="genus", position=0, taxon_id=genus.id, name=genus.name,
                                prob=min(1.0, score + 0.05)))
            s.add(PredictionRow(decision_id=d.id, rank="family", position=0, taxon_id=family.id, name=family.name,
                                prob=min(1.0, score + 0.08)))
            decision_ids.append(d.id)
    return Seeded(decision_ids=decision_ids, observation_ids=obs_ids)


def platform_factory(cfg: Config, store: Store) -> Callable[[], Any]:
    def factory() -> Any:
        from bot.platforms import create_platform

        return create_platform(cfg, Secrets(), dry_run=cfg.posting.mode == "dry-run")

    return factory


def build_app(cfg: Config, store: Store) -> Flask:
    app = create_app(cfg, store, platform_factory=platform_factory(cfg, store), secret_key="test-secret-key")
    app.testing = True
    return app


def sign_in(client: FlaskClient, login: str = MODERATOR, password: str = PASSWORD) -> Any:
    """The whole authorization-code flow: app -> sim sign-in form -> app callback.  Returns the final response."""
    start = client.get("/login")
    assert start.status_code == 302
    authorize = start.headers["Location"]
    form_page = requests.get(authorize, timeout=10)
    assert form_page.status_code == 200 and 'name="login"' in form_page.text
    fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    answer = requests.post(authorize.split("?", 1)[0], data={**fields, "login": login, "password": password},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def csrf_of(client: FlaskClient) -> str:
    """The session's CSRF token, as the queue page puts it into every form."""
    assert client.get("/").status_code == 200
    with client.session_transaction() as sess:
        token = sess.get("csrf")
    assert isinstance(token, str) and token
    return token


def token_login(sim: Any, bearer: str) -> str | None:
    """Whose token a write carried: a JWT on v1, an OAuth access token on a fork."""
    claims = sim.tokens.check_jwt(bearer)
    if claims is not None:
        return str(claims["login"])
    user_id = sim.tokens.check_access_token(bearer)
    return sim.world.users[user_id].login if user_id is not None else None


def endpoint(path: str) -> str:
    """/v1/identifications and /identifications.json alike: the resource written."""
    return path.removesuffix(".json").rsplit("/", 1)[-1]
