"""A small simulated community for the posting acceptance tests, with a designed model bundle.

Each observation's photo is a prototype whose class probabilities the bundle was solved for, so the
decision on every observation is known: species IDs, a genus and a family comment, an abstention,
and two species proposals on observations that opted out (by user, by tag).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bot.domain import Label
from bot.sim.model import SimObservation, SimUser, World
from tests.support.designed_model import (
    build_designed_bundle,
    make_prototypes,
    plant_world,
    spread_target,
    taxonomy_labels,
)
from tests.support.simconfig import write_sim_config

FAMILIES = {201: "Rosaceae", 203: "Fagaceae"}
GENERA = {301: ("Rosa", 201), 302: ("Rubus", 201), 304: ("Quercus", 203), 305: ("Fragaria", 201),
          306: ("Prunus", 201), 307: ("Fagus", 203), 308: ("Castanea", 203)}
SPECIES = {401: ("Rosa canina", 301), 402: ("Rosa gallica", 301), 403: ("Rubus idaeus", 302),
           406: ("Quercus robur", 304), 407: ("Fragaria vesca", 305), 408: ("Prunus avium", 306),
           409: ("Fagus sylvatica", 307), 410: ("Castanea sativa", 308)}
SPECIES_IDS = list(SPECIES)

OBSERVER, SHY, MODERATOR, BOT = "observer", "shy_observer", "moderator", "plantbot"
OPT_OUT_TAG = "no-plantbot"


def labels() -> list[Label]:
    return taxonomy_labels(SPECIES, GENERA, FAMILIES)


def _target(weights: dict[int, float]) -> np.ndarray:
    return spread_target(weights, SPECIES_IDS)


# prototype -> (probabilities, expected decision kind, taxon)
PROTOS: list[tuple[np.ndarray, str, int | None]] = [
    (_target({401: 0.9}), "species", 401),
    (_target({406: 0.85}), "species", 406),
    (_target({401: 0.2, 402: 0.2, 403: 0.01}), "genus", 301),  # Rosa .40, no species or other genus >= .3
    # Rosa .28, Rubus .20, every other genus < .3, Rosaceae .68
    (_target({401: 0.14, 402: 0.14, 403: 0.2, 407: 0.1, 408: 0.1}), "family", 201),
]
# observation id -> (prototype index, observer, tags)
OBSERVATIONS: dict[int, tuple[int, str, list[str]]] = {
    101: (0, OBSERVER, []),
    102: (1, OBSERVER, []),
    103: (2, OBSERVER, []),
    104: (3, OBSERVER, []),
    105: (0, SHY, []),  # opted out by user
    106: (1, OBSERVER, [OPT_OUT_TAG]),  # opted out by tag
}
POSTABLE = {101: ("identification", 401), 102: ("identification", 406), 103: ("comment", 301),
            104: ("comment", 201)}


def build_world() -> tuple[World, list[bytes]]:
    protos = make_prototypes(len(PROTOS), seed=11)
    world = plant_world(SPECIES, GENERA, FAMILIES)
    logins = [OBSERVER, SHY, MODERATOR, BOT]
    for uid, login in enumerate(logins, start=1):
        world.users[uid] = SimUser(uid, login)
    photo_id = 7000
    for oid, (proto, login, tags) in OBSERVATIONS.items():
        ids = []
        for _ in range(2):  # two photos each, the same prototype
            world.photos[photo_id] = protos[proto]
            ids.append(photo_id)
            photo_id += 1
        world.observations[oid] = SimObservation(oid, logins.index(login) + 1, ids, taxon_id=47126, tags=tags)
    return world, protos


def build_bundle(folder: Path, protos: list[bytes]) -> Path:
    bundle = build_designed_bundle(folder, labels(), protos, np.stack([p[0] for p in PROTOS]),
                                   name="plants-test", version="3")
    return Path(bundle.path)


def write_config(path: Path, *, api_url: str, site_url: str, bundle: Path, mode: str, tmp: Path,
                 extra: str = "", flavor: str = "inat-v1") -> Path:
    auto = {"allow_unreviewed": True, "account_login": "plantbot"} if mode == "auto" else {}
    return write_sim_config(path, api_url=api_url, site_url=site_url, state=tmp, extra=extra, sections={
        "platform": {"flavor": flavor, "requests_per_second": 50.0, "requests_per_minute": 3000,
                     "photo_hosts": ["127.0.0.1"], "timeout_seconds": 10.0},
        "model": {"path": bundle, "batch_size": 8, "threads": 1, "workers": 1},
        "posting": {"mode": mode, "opt_out_users": [SHY], "opt_out_tags": [OPT_OUT_TAG], **auto},
        "review": {"moderators": [MODERATOR]},
        "schedule": {"interval_seconds": 3600, "post_interval_seconds": 1},
    })


# --- request bodies against the API's own OpenAPI description ----------------------------------

SPEC = Path(__file__).resolve().parent / "fixtures" / "openapi_spec_v1.json"
TYPES: dict[str, Any] = {"integer": int, "string": str, "boolean": bool, "object": dict, "number": (int, float),
                         "array": list}


def body_schema(spec: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    """The JSON schema of the `in: body` parameter of `method path`, with $refs resolved."""
    params = spec["paths"][path][method]["parameters"]
    [body] = [p for p in params if p.get("in") == "body"]
    return _resolve(spec, body["schema"])


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(spec, spec["definitions"][name])
    return schema


def validate(spec: dict[str, Any], value: Any, schema: dict[str, Any], where: str = "body") -> list[str]:
    """Problems with `value` under `schema`: wrong types, enum misses, and keys the API does not document."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    problems: list[str] = []
    if kind is not None:
        expected = TYPES[kind]
        if isinstance(value, bool) and kind in ("integer", "number"):
            return [f"{where}: boolean where {kind} expected"]
        if not isinstance(value, expected):
            return [f"{where}: {type(value).__name__} where {kind} expected"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, item in value.items():
            if key not in props:
                problems.append(f"{where}.{key}: not in the API's schema")
            else:
                problems += validate(spec, item, props[key], f"{where}.{key}")
    return problems


def load_spec() -> dict[str, Any]:
    return json.loads(SPEC.read_text(encoding="utf-8"))
