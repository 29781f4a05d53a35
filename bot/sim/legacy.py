"""The older Rails API (`/observations.json`...) that independent iNaturalist forks serve.

Shapes follow ../shared/inat/samples/get_observations.json: bare JSON lists, `*_url` per photo size,
`taxon.ancestry` as a slash string, `user_login`; writes are form fields authorised by a
non-expiring OAuth access token.
"""

from __future__ import annotations

from typing import Any

from bot.sim import render
from bot.sim.model import SimComment, SimIdentification, SimObservation, World
from bot.sim.routing import (
    BadRequest,
    Call,
    Reply,
    Route,
    SimHost,
    add_comment,
    add_identification,
    error_reply,
    find_comment,
    find_identification,
    json_reply,
    route,
    to_bool,
    to_int,
)
from bot.sim.v1 import paging, select_observations

SIZE_WORDS = ("square", "thumb", "small", "medium", "large")


def token_user(srv: SimHost, call: Call) -> int | None:
    token = call.bearer()
    user_id = srv.tokens.check_access_token(token) if token else None
    return user_id if user_id in srv.world.users else None


def unauthorized() -> Reply:
    return error_reply(401, "invalid_token", "An OAuth access token is required")


def _taxon(ctx: render.Ctx, taxon_id: int | None) -> dict[str, Any] | None:
    if taxon_id is None or taxon_id not in ctx.world.taxa:
        return None
    taxon = ctx.world.taxa[taxon_id]
    parents = ctx.world.ancestor_ids(taxon_id)[:-1]
    return {"id": taxon.id, "name": taxon.name, "rank": taxon.rank,
            "ancestry": "/".join(str(t) for t in parents) or None, "common_name": None}


def _iconic(ctx: render.Ctx, taxon_id: int | None) -> dict[str, Any] | None:
    iconic_id = render.iconic_taxon_id(ctx.world, taxon_id) if taxon_id in ctx.world.taxa else None
    if iconic_id is None or taxon_id is None:
        return None
    taxon = ctx.world.taxa[iconic_id]
    parents = ctx.world.ancestor_ids(iconic_id)[:-1]
    return {"id": taxon.id, "name": taxon.name, "rank": taxon.rank, "rank_level": render.rank_level(taxon),
            "ancestry": "/".join(str(t) for t in parents) or None}


def _photo(ctx: render.Ctx, obs: SimObservation, photo_id: int, login: str) -> dict[str, Any]:
    urls = {f"{w}_url": render.photo_url(ctx.photo_base, photo_id, w, "jpeg") for w in SIZE_WORDS}
    return {
        "id": photo_id, "user_id": obs.user_id, "native_photo_id": str(photo_id), **urls,
        "created_at": obs.created_at, "updated_at": obs.created_at,
        "native_page_url": f"{ctx.site_url}/photos/{photo_id}", "native_username": login,
        "native_realname": None, "license": 2, "subtype": None, "native_original_image_url": None,
        "uuid": render.sim_uuid("photo", photo_id), "license_code": "CC-BY-NC",
        "attribution": f"(c) {login}, some rights reserved (CC BY-NC)",
        "license_name": "Creative Commons Attribution-NonCommercial License",
        "license_url": "http://creativecommons.org/licenses/by-nc/4.0/", "type": "LocalPhoto",
    }


def observation(ctx: render.Ctx, obs: SimObservation) -> dict[str, Any]:
    """One element of GET /observations.json."""
    world = ctx.world
    user = world.users.get(obs.user_id)
    login = user.login if user else f"user{obs.user_id}"
    taxon = _taxon(ctx, obs.taxon_id)
    current = [i for i in obs.identifications if i.current]
    observed = obs.observed_at or obs.created_at
    return {
        "id": obs.id, "observed_on": observed[:10], "description": obs.description or "",
        "latitude": _coord(obs.latitude), "longitude": _coord(obs.longitude), "map_scale": None, "timeframe": None,
        "species_guess": taxon["name"] if taxon else None, "user_id": obs.user_id, "taxon_id": obs.taxon_id,
        "created_at": obs.created_at, "updated_at": obs.created_at, "place_guess": obs.place_guess,
        "id_please": False, "observed_on_string": observed,
        "iconic_taxon_id": render.iconic_taxon_id(world, obs.taxon_id) if taxon and obs.taxon_id else None,
        "num_identification_agreements": 0, "num_identification_disagreements": 0,
        "time_observed_at": observed, "time_zone": "UTC", "location_is_exact": False, "delta": False,
        "positional_accuracy": obs.positional_accuracy, "private_latitude": None, "private_longitude": None,
        "private_positional_accuracy": None, "geoprivacy": None, "quality_grade": obs.quality_grade,
        "positioning_method": None, "positioning_device": None, "out_of_range": None, "license": "CC-BY-NC",
        "uri": f"{ctx.site_url}/observations/{obs.id}", "observation_photos_count": len(obs.photo_ids),
        "comments_count": len(obs.comments), "zic_time_zone": "Etc/UTC", "oauth_application_id": None,
        "observation_sounds_count": 0, "identifications_count": len(current), "captive": obs.captive,
        "community_taxon_id": obs.community_taxon_id, "site_id": obs.site_id, "old_uuid": None,
        "public_positional_accuracy": None, "mappable": False, "cached_votes_total": 0,
        "last_indexed_at": obs.created_at, "private_place_guess": None,
        "uuid": render.sim_uuid("observation", obs.id), "taxon_geoprivacy": None, "short_description": "",
        "user_login": login, "iconic_taxon_name": world.iconic_taxon_name(obs.taxon_id),
        "tag_list": list(obs.tags), "faves_count": 0, "created_at_utc": obs.created_at,
        "updated_at_utc": obs.created_at, "time_observed_at_utc": observed,
        "owners_identification_from_vision": False, "taxon": taxon, "iconic_taxon": _iconic(ctx, obs.taxon_id),
        "user": {"login": login, "user_icon_url": None},
        "photos": [_photo(ctx, obs, pid, login) for pid in obs.photo_ids],
        **obs.served,
    }


def _coord(value: float | None) -> str | None:
    """The Rails API sends coordinates as decimal strings."""
    return None if value is None else f"{value:.6f}"


def _user(ctx: render.Ctx, user_id: int) -> dict[str, Any]:
    user = ctx.world.users.get(user_id)
    return {"id": user_id, "login": user.login if user else f"user{user_id}", "name": None,
            "user_icon_url": None}


def identification(ctx: render.Ctx, obs: SimObservation, ident: SimIdentification) -> dict[str, Any]:
    return {
        "id": ident.id, "observation_id": obs.id, "taxon_id": ident.taxon_id, "user_id": ident.user_id,
        "type": None, "body": ident.body or None, "created_at": ident.created_at,
        "updated_at": ident.created_at, "current": ident.current,
        "uuid": render.sim_uuid("identification", ident.id), "category": ident.category,
        "vision": ident.vision, "disagreement": None, "hidden": ident.hidden,
        "taxon": _taxon(ctx, ident.taxon_id), "user": _user(ctx, ident.user_id),
    }


def comment(ctx: render.Ctx, obs: SimObservation, item: SimComment) -> dict[str, Any]:
    return {
        "id": item.id, "user_id": item.user_id, "parent_type": "Observation", "parent_id": obs.id,
        "body": item.body, "created_at": item.created_at, "updated_at": item.created_at,
        "uuid": render.sim_uuid("comment", item.id), "hidden": item.hidden, "user": _user(ctx, item.user_id),
    }


def observation_detail(ctx: render.Ctx, obs: SimObservation) -> dict[str, Any]:
    """GET /observations/{id}.json: the list fields plus photos, identifications and comments."""
    doc = observation(ctx, obs)
    doc["observation_photos"] = [{"id": obs.id * 100 + pos, "position": pos, "photo": photo}
                                 for pos, photo in enumerate(doc["photos"])]
    doc["identifications"] = [identification(ctx, obs, i) for i in obs.identifications]
    doc["comments"] = [comment(ctx, obs, c) for c in obs.comments]
    doc["observation_field_values"] = _field_values(obs)
    return doc


def _field_values(obs: SimObservation) -> list[dict[str, Any]]:
    """observation_field_values as Rails serialises them: the field nested, without observation_field_id."""
    return [{"id": obs.id * 100 + index, "observation_id": obs.id, "value": value, "user_id": obs.user_id,
             "updater_id": obs.user_id, "created_at": obs.created_at, "updated_at": obs.created_at,
             "uuid": render.sim_uuid("ofv", obs.id * 100 + index),
             "observation_field": {"id": index + 1, "datatype": "text", "name": name, "allowed_values": ""}}
            for index, (name, value) in enumerate(obs.ofvs.items())]


def _with_extra(ctx: render.Ctx, obs: SimObservation, extra: set[str]) -> dict[str, Any]:
    """A list element; `extra=identifications` and `extra=fields` add them, as the Rails list does
    (comments never; annotations are not in the Rails JSON at all)."""
    doc = observation(ctx, obs)
    if "identifications" in extra:
        doc["identifications"] = [identification(ctx, obs, i) for i in obs.identifications]
    if "fields" in extra:
        doc["observation_field_values"] = _field_values(obs)
    return doc


def list_observations(srv: SimHost, call: Call) -> Reply:
    page, per_page = paging(call)
    with srv.lock:
        found = select_observations(srv, call)
        ctx = srv.render_ctx(call)
        extra = set(call.values("extra"))
        chunk = [_with_extra(ctx, o, extra) for o in found[(page - 1) * per_page: page * per_page]]
    headers = {"X-Total-Entries": str(len(found)), "X-Page": str(page), "X-Per-Page": str(per_page)}
    return json_reply(chunk, headers=headers)


def show_observation(srv: SimHost, call: Call) -> Reply:
    with srv.lock:
        obs = srv.world.observations.get(to_int(call.params["id"], "id"))
        if obs is None or not srv.visible(obs):
            return error_reply(404, "Not found")
        return json_reply(observation_detail(srv.render_ctx(call), obs))


def _section(call: Call, name: str) -> dict[str, Any]:
    fields = call.body_fields().get(name)
    if not isinstance(fields, dict):
        raise BadRequest(f"{name}[...] fields are required")
    return fields


def create_identification(srv: SimHost, call: Call) -> Reply:
    user_id = token_user(srv, call)
    if user_id is None:
        return unauthorized()
    fields = _section(call, "identification")
    obs_id = to_int(fields.get("observation_id"), "observation_id")
    taxon_id = to_int(fields.get("taxon_id"), "taxon_id")
    with srv.lock:
        obs = srv.world.observations.get(obs_id)
        if obs is None or not srv.visible(obs) or taxon_id not in srv.world.taxa:
            raise BadRequest(f"unknown observation {obs_id} or taxon {taxon_id}")
        ident = add_identification(srv.world, obs, user_id, taxon_id, str(fields.get("body") or ""))
        return json_reply(identification(srv.render_ctx(call), obs, ident))


def change_identification(srv: SimHost, call: Call) -> Reply:
    user_id = token_user(srv, call)
    if user_id is None:
        return unauthorized()
    fields = call.body_fields().get("identification")
    fields = fields if isinstance(fields, dict) else {}
    with srv.lock:
        found = find_identification(srv.world, to_int(call.params["id"], "id"))
        if found is None:
            return error_reply(404, "Not found")
        obs, ident = found
        if ident.user_id != user_id:
            return error_reply(403, "Forbidden")
        if call.req.method == "DELETE":
            obs.identifications.remove(ident)
            return json_reply({})
        if "current" in fields:
            ident.current = to_bool(fields["current"])
        if "body" in fields:
            ident.body = str(fields["body"] or "")
        return json_reply(identification(srv.render_ctx(call), obs, ident))


def create_comment(srv: SimHost, call: Call) -> Reply:
    user_id = token_user(srv, call)
    if user_id is None:
        return unauthorized()
    fields = _section(call, "comment")
    if fields.get("parent_type", "Observation") != "Observation":
        raise BadRequest("only comments on observations are simulated")
    obs_id = to_int(fields.get("parent_id"), "parent_id")
    with srv.lock:
        obs = srv.world.observations.get(obs_id)
        if obs is None or not srv.visible(obs):
            raise BadRequest(f"unknown observation {obs_id}")
        item = add_comment(srv.world, obs, user_id, str(fields.get("body") or ""))
        return json_reply(comment(srv.render_ctx(call), obs, item))


def delete_comment(srv: SimHost, call: Call) -> Reply:
    user_id = token_user(srv, call)
    if user_id is None:
        return unauthorized()
    with srv.lock:
        found = find_comment(srv.world, to_int(call.params["id"], "id"))
        if found is None:
            return error_reply(404, "Not found")
        obs, item = found
        if item.user_id != user_id:
            return error_reply(403, "Forbidden")
        obs.comments.remove(item)
    return json_reply({})


def legacy_taxon(world: World, taxon_id: int) -> dict[str, Any]:
    """A taxon as the fork's Rails `Taxon#to_json` gives it: ancestry as a slash string of ids (root
    first, without the taxon itself), parent_id, iconic_taxon_id and the default name; no ancestors[]."""
    taxon = world.taxa[taxon_id]
    parents = world.ancestor_ids(taxon_id)[:-1]
    return {"id": taxon.id, "name": taxon.name, "rank": taxon.rank, "rank_level": render.rank_level(taxon),
            "ancestry": "/".join(str(a) for a in parents) or None, "parent_id": taxon.parent_id,
            "iconic_taxon_id": render.iconic_taxon_id(world, taxon.id), "is_active": True,
            "observations_count": 0, "listed_taxa_count": 0, "unique_name": taxon.name.lower(),
            "source_id": None, "name_provider": None, "locked": False, "wikipedia_title": None,
            "wikipedia_summary": None, "featured_at": None, "auto_description": True,
            "conservation_status": None, "conservation_status_name": None,
            "created_at": "2008-03-01T00:00:00-08:00", "updated_at": "2020-01-01T00:00:00-08:00",
            "photo_url": None, "image_url": None, "common_name": None,
            "default_name": {"id": taxon.id, "name": taxon.name, "lexicon": "Scientific Names",
                             "is_valid": True, "taxon_id": taxon.id}}


def show_taxon(srv: SimHost, call: Call) -> Reply:
    """GET /taxa/{id}.json."""
    with srv.lock:
        taxon_id = to_int(call.params["id"], "id")
        if taxon_id not in srv.world.taxa:
            return error_reply(404, "Not found")
        return json_reply(legacy_taxon(srv.world, taxon_id))


def search_taxa(srv: SimHost, call: Call) -> Reply:
    """GET /taxa/search.json?q=: a bare list of taxa, names starting with the query first."""
    query = (call.value("q") or "").lower()
    rank = call.value("rank")
    page, per_page = paging(call)
    with srv.lock:
        world = srv.world
        hits = sorted((t for t in world.taxa.values()
                       if query in t.name.lower() and (rank is None or t.rank == rank)),
                      key=lambda t: (not t.name.lower().startswith(query), t.name))
        results = [legacy_taxon(world, t.id) for t in hits[(page - 1) * per_page: page * per_page]]
    return json_reply(results, headers={"X-Total-Entries": str(len(hits))})


def users_edit(srv: SimHost, call: Call) -> Reply:
    user_id = token_user(srv, call)
    if user_id is None:
        return unauthorized()
    return json_reply({"id": user_id, "login": srv.world.users[user_id].login, "name": None,
                       "icon_url": None, "site_id": 1})


ROUTES: list[Route] = [
    route("GET", r"/observations\.json", list_observations),
    route("GET", r"/observations/(?P<id>[0-9]+)\.json", show_observation),
    route("POST", r"/identifications\.json", create_identification),
    route("PUT", r"/identifications/(?P<id>[0-9]+)\.json", change_identification),
    route("DELETE", r"/identifications/(?P<id>[0-9]+)\.json", change_identification),
    route("POST", r"/comments\.json", create_comment),
    route("DELETE", r"/comments/(?P<id>[0-9]+)\.json", delete_comment),
    route("GET", r"/taxa/search\.json", search_taxa),
    route("GET", r"/taxa/(?P<id>[0-9]+)\.json", show_taxon),
    route("GET", r"/users/edit\.json", users_edit),
]
