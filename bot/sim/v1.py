"""The simulator's iNaturalist API v1 routes (`/v1/...`): observations, taxa, identifications,
comments, users; reads are open, writes need a valid unexpired JWT like the real API."""

from __future__ import annotations

from typing import Any

from bot.sim import render
from bot.sim.model import SimObservation
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
    to_time,
)

MAX_PER_PAGE = 200


def jwt_user(srv: SimHost, call: Call) -> int | None:
    claims = srv.tokens.check_jwt(call.bearer()) if call.bearer() else None
    if claims is None:
        return None
    user_id = claims.get("user_id")
    return user_id if isinstance(user_id, int) and user_id in srv.world.users else None


def unauthorized() -> Reply:
    return error_reply(401, "Unauthorized", "A valid, unexpired JWT is required (Authorization header)")


def _matches(srv: SimHost, call: Call, obs: SimObservation) -> bool:
    world = srv.world
    iconic = call.values("iconic_taxa")
    if iconic and world.iconic_taxon_name(obs.taxon_id) not in iconic:
        return False
    wants_photos = call.value("photos") or ("true" if "photos" in call.values("has") else None)
    if wants_photos is not None and to_bool(wants_photos) != bool(obs.photo_ids):
        return False
    taxa = call.values("taxon_id")
    if taxa and not (obs.taxon_id and set(world.ancestor_ids(obs.taxon_id)) & {to_int(t, "taxon_id") for t in taxa}):
        return False
    users = call.values("user_id") + call.values("user_login")
    user = world.users.get(obs.user_id)
    if users and str(obs.user_id) not in users and (user is None or user.login not in users):
        return False
    checks: list[tuple[str, list[int]]] = [("place_id", obs.place_ids), ("project_id", obs.project_ids),
                                           ("site_id", [obs.site_id])]
    for name, held in checks:
        wanted = call.values(name)
        if wanted and not {to_int(v, name) for v in wanted} & set(held):
            return False
    grades = call.values("quality_grade")
    if grades and obs.quality_grade not in grades:
        return False
    created = to_time(obs.created_at, "created_at")
    for name, ok in (("created_d1", lambda t: created >= t), ("created_d2", lambda t: created <= t)):
        bound = call.value(name)
        if bound is not None and not ok(to_time(bound, name)):
            return False
    captive = call.value("captive")
    if captive is not None and to_bool(captive) != obs.captive:
        return False
    ids = call.values("id")
    return not ids or obs.id in {to_int(v, "id") for v in ids}


def select_observations(srv: SimHost, call: Call) -> list[SimObservation]:
    """The visible observations matching the query's filters, in the requested id order."""
    above = call.int_value("id_above", -1)
    below = call.int_value("id_below", 2**62)
    found = [o for o in srv.world.observations.values()
             if srv.visible(o) and above < o.id < below and _matches(srv, call, o)]
    descending = (call.value("order") or "desc").lower() != "asc"
    return sorted(found, key=lambda o: o.id, reverse=descending)


def paging(call: Call, default: int = 30) -> tuple[int, int]:
    per_page = max(0, min(MAX_PER_PAGE, call.int_value("per_page", default)))
    return max(1, call.int_value("page", 1)), per_page


def list_observations(srv: SimHost, call: Call) -> Reply:
    page, per_page = paging(call)
    with srv.lock:
        found = select_observations(srv, call)
        ctx = srv.render_ctx(call)
        chunk = found[(page - 1) * per_page: page * per_page]
        return json_reply(render.result_page([render.v1_observation(ctx, o) for o in chunk],
                                             len(found), page, per_page))


def _ids(call: Call, name: str = "ids") -> list[int]:
    return [to_int(part, "id") for part in call.params[name].split(",") if part]


def show_observations(srv: SimHost, call: Call) -> Reply:
    with srv.lock:
        ctx = srv.render_ctx(call)
        found = [srv.world.observations[i] for i in _ids(call) if i in srv.world.observations]
        results = [render.v1_observation(ctx, o) for o in found if srv.visible(o)]
    return json_reply(render.result_page(results, len(results), 1, 30 if not results else len(results)))


SPECIES_COUNTS_MAX_PER_PAGE = 500


def _verifiable(obs: SimObservation) -> bool:
    """Research grade or needs ID: has photos and is not captive (the sim has no other casual cause)."""
    return bool(obs.photo_ids) and not obs.captive and obs.quality_grade != "casual"


def species_counts(srv: SimHost, call: Call) -> Reply:
    """GET /v1/observations/species_counts: the leaf taxa of the matching observations with their
    observation counts, most observed first (ties by id), paged up to 500 a page like the real API."""
    page = max(1, call.int_value("page", 1))
    per_page = max(0, min(SPECIES_COUNTS_MAX_PER_PAGE, call.int_value("per_page", SPECIES_COUNTS_MAX_PER_PAGE)))
    verifiable = call.value("verifiable")
    with srv.lock:
        world = srv.world
        counts: dict[int, int] = {}
        for obs in select_observations(srv, call):
            if obs.taxon_id is None or obs.taxon_id not in world.taxa:
                continue
            if verifiable is not None and to_bool(verifiable) != _verifiable(obs):
                continue
            counts[obs.taxon_id] = counts.get(obs.taxon_id, 0) + 1
        inner = {a for tid in counts for a in world.ancestor_ids(tid)[:-1]}
        leaves = sorted((tid for tid in counts if tid not in inner), key=lambda t: (-counts[t], t))
        chunk = leaves[(page - 1) * per_page: page * per_page]
        results = [{"count": counts[tid], "taxon": render.core_taxon(world, tid, include_self=True)}
                   for tid in chunk]
    return json_reply(render.result_page(results, len(leaves), page, per_page))


def show_taxa(srv: SimHost, call: Call) -> Reply:
    with srv.lock:
        results = [render.show_taxon(srv.world, i) for i in _ids(call) if i in srv.world.taxa]
    return json_reply(render.result_page(results, len(results), 1, 30))


def search_taxa(srv: SimHost, call: Call) -> Reply:
    """GET /v1/taxa and /v1/taxa/autocomplete: name search (prefix matches first), optional rank."""
    query = (call.value("q") or "").lower()
    autocomplete = call.req.path.endswith("/autocomplete")
    ranks = call.values("rank")
    page, per_page = paging(call)
    with srv.lock:
        hits = [t for t in srv.world.taxa.values()
                if query in t.name.lower() and (not ranks or t.rank in ranks)]
        hits.sort(key=lambda t: (not t.name.lower().startswith(query), t.name.lower() != query, t.name))
        chunk = hits[(page - 1) * per_page: page * per_page]
        results = [{**render.core_taxon(srv.world, t.id, include_self=False), "matched_term": t.name,
                    **({} if autocomplete else {"vision": True})}
                   for t in chunk]
    return json_reply(render.result_page(results, len(hits), page, per_page))


def list_identifications(srv: SimHost, call: Call) -> Reply:
    page, per_page = paging(call)
    obs_ids = {to_int(v, "observation_id") for v in call.values("observation_id")}
    ident_ids = {to_int(v, "id") for v in call.values("id")}
    taxon_ids = {to_int(v, "taxon_id") for v in call.values("taxon_id")}
    users = set(call.values("user_id")) | set(call.values("user_login"))
    current = (call.value("current") or "true").lower()
    with srv.lock:
        world = srv.world
        hits = []
        for obs in world.observations.values():
            if not srv.visible(obs) or (obs_ids and obs.id not in obs_ids):
                continue
            for ident in obs.identifications:
                user = world.users.get(ident.user_id)
                if ((ident_ids and ident.id not in ident_ids) or (taxon_ids and ident.taxon_id not in taxon_ids)
                        or (current != "any" and ident.current != to_bool(current))
                        or (users and str(ident.user_id) not in users and (not user or user.login not in users))):
                    continue
                hits.append((obs, ident))
        hits.sort(key=lambda pair: pair[1].id, reverse=(call.value("order") or "desc") != "asc")
        ctx = srv.render_ctx(call)
        results = [_ident_with_obs(ctx, o, i) for o, i in hits[(page - 1) * per_page: page * per_page]]
    return json_reply(render.result_page(results, len(hits), page, per_page))


def _ident_with_obs(ctx: render.Ctx, obs: SimObservation, ident: Any) -> dict[str, Any]:
    doc = render.v1_identification(ctx, obs, ident)
    doc.pop("previous_observation_taxon", None)
    doc["current_taxon"] = True
    doc["observation"] = {**render.v1_observation(ctx, obs), "user_id": obs.user_id}
    return doc


def show_identifications(srv: SimHost, call: Call) -> Reply:
    wanted = set(_ids(call))
    with srv.lock:
        ctx = srv.render_ctx(call)
        results = [_ident_with_obs(ctx, o, i) for o in srv.world.observations.values() if srv.visible(o)
                   for i in o.identifications if i.id in wanted]
    return json_reply(render.result_page(results, len(results), 1, 30))


def _created_ident(ctx: render.Ctx, obs: SimObservation, ident: Any) -> dict[str, Any]:
    return {**render.v1_identification(ctx, obs, ident), "observation_id": obs.id, "user_id": ident.user_id}


def create_identification(srv: SimHost, call: Call) -> Reply:
    user_id = jwt_user(srv, call)
    if user_id is None:
        return unauthorized()
    fields = call.body_fields().get("identification")
    if not isinstance(fields, dict):
        raise BadRequest("body must be {\"identification\": {...}}")
    obs_id = to_int(fields.get("observation_id"), "observation_id")
    taxon_id = to_int(fields.get("taxon_id"), "taxon_id")
    with srv.lock:
        obs = srv.world.observations.get(obs_id)
        if obs is None or not srv.visible(obs):
            raise BadRequest(f"observation {obs_id} does not exist")
        if taxon_id not in srv.world.taxa:
            raise BadRequest(f"taxon {taxon_id} does not exist")
        ident = add_identification(srv.world, obs, user_id, taxon_id, str(fields.get("body") or ""))
        ident.vision = to_bool(fields.get("vision", False))
        return json_reply(_created_ident(srv.render_ctx(call), obs, ident))


def update_identification(srv: SimHost, call: Call) -> Reply:
    user_id = jwt_user(srv, call)
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
            return error_reply(403, "Forbidden", "only the identifier can change an identification")
        if "current" in fields:
            ident.current = to_bool(fields["current"])
        if "body" in fields:
            ident.body = str(fields["body"] or "")
        return json_reply(_created_ident(srv.render_ctx(call), obs, ident))


def delete_identification(srv: SimHost, call: Call) -> Reply:
    user_id = jwt_user(srv, call)
    if user_id is None:
        return unauthorized()
    with srv.lock:
        found = find_identification(srv.world, to_int(call.params["id"], "id"))
        if found is None:
            return error_reply(404, "Not found")
        obs, ident = found
        if ident.user_id != user_id:
            return error_reply(403, "Forbidden", "only the identifier can delete an identification")
        obs.identifications.remove(ident)
    return json_reply({})


def create_comment(srv: SimHost, call: Call) -> Reply:
    user_id = jwt_user(srv, call)
    if user_id is None:
        return unauthorized()
    fields = call.body_fields().get("comment")
    if not isinstance(fields, dict):
        raise BadRequest("body must be {\"comment\": {...}}")
    if fields.get("parent_type", "Observation") != "Observation":
        raise BadRequest("only comments on observations are simulated")
    obs_id = to_int(fields.get("parent_id"), "parent_id")
    with srv.lock:
        obs = srv.world.observations.get(obs_id)
        if obs is None or not srv.visible(obs):
            raise BadRequest(f"observation {obs_id} does not exist")
        comment = add_comment(srv.world, obs, user_id, str(fields.get("body") or ""))
        doc = render.v1_comment(srv.render_ctx(call), comment)
    return json_reply({**doc, "parent_type": "Observation", "parent_id": obs.id, "user_id": user_id})


def delete_comment(srv: SimHost, call: Call) -> Reply:
    user_id = jwt_user(srv, call)
    if user_id is None:
        return unauthorized()
    with srv.lock:
        found = find_comment(srv.world, to_int(call.params["id"], "id"))
        if found is None:
            return error_reply(404, "Not found")
        obs, comment = found
        if comment.user_id != user_id:
            return error_reply(403, "Forbidden", "only the author can delete a comment")
        obs.comments.remove(comment)
    return json_reply({})


def users_me(srv: SimHost, call: Call) -> Reply:
    user_id = jwt_user(srv, call)
    if user_id is None:
        return unauthorized()
    return json_reply(render.result_page([render.v1_user(srv.world.users[user_id], user_id)], 1, 1, 1))


def show_user(srv: SimHost, call: Call) -> Reply:
    user_id = to_int(call.params["id"], "id")
    user = srv.world.users.get(user_id)
    results = [render.v1_user(user, user_id)] if user else []
    return json_reply(render.result_page(results, len(results), 1, 1))


ROUTES: list[Route] = [
    route("GET", r"/v1/observations", list_observations),
    route("GET", r"/v1/observations/species_counts", species_counts),
    route("GET", r"/v1/observations/(?P<ids>[0-9,]+)", show_observations),
    route("GET", r"/v1/taxa/autocomplete", search_taxa),
    route("GET", r"/v1/taxa/(?P<ids>[0-9,]+)", show_taxa),
    route("GET", r"/v1/taxa", search_taxa),
    route("GET", r"/v1/identifications", list_identifications),
    route("GET", r"/v1/identifications/(?P<ids>[0-9,]+)", show_identifications),
    route("POST", r"/v1/identifications", create_identification),
    route("PUT", r"/v1/identifications/(?P<id>[0-9]+)", update_identification),
    route("DELETE", r"/v1/identifications/(?P<id>[0-9]+)", delete_identification),
    route("POST", r"/v1/comments", create_comment),
    route("DELETE", r"/v1/comments/(?P<id>[0-9]+)", delete_comment),
    route("GET", r"/v1/users/me", users_me),
    route("GET", r"/v1/users/(?P<id>[0-9]+)", show_user),
]
