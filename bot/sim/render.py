"""The world rendered into iNaturalist API v1 JSON, field for field as in ../shared/inat/samples.

Fields the world has no data for get the neutral values the real API uses (null, [], 0, false), so
a parser written against the real samples reads simulator responses unchanged.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.sim.imagestore import PhotoStore
from bot.sim.model import SimComment, SimIdentification, SimObservation, SimTaxon, SimUser, World

RANK_LEVELS = {
    "kingdom": 70, "phylum": 60, "subphylum": 57, "class": 50, "subclass": 47, "order": 40,
    "suborder": 37, "superfamily": 33, "family": 30, "subfamily": 27, "tribe": 25, "genus": 20,
    "subgenus": 15, "section": 13, "species": 10, "hybrid": 10, "subspecies": 5, "variety": 5, "form": 5,
}
PHOTO_STAMP = 1700000000
LICENSE = "cc-by-nc"


@dataclass
class Ctx:
    """What rendering needs besides the world: where the site and the photos live."""

    world: World
    site_url: str
    photo_base: str
    photos: PhotoStore
    taxa: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # rendered once per response

    def taxon(self, kind: str, taxon_id: int) -> dict[str, Any]:
        """The observation ("obs") or identification ("ident") taxon, shared within one response."""
        key = (kind, taxon_id)
        if key not in self.taxa:
            self.taxa[key] = (obs_taxon if kind == "obs" else ident_taxon)(self.world, taxon_id)
        return self.taxa[key]


def sim_uuid(kind: str, ident: int) -> str:
    """Stable UUIDs, so that a record keeps its uuid across requests and server restarts."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"plantbot-sim:{kind}:{ident}"))


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def date_details(stamp: str) -> dict[str, Any]:
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        when = datetime(2026, 1, 1)
    return {"date": when.date().isoformat(), "week": when.isocalendar()[1], "month": when.month,
            "hour": when.hour, "year": when.year, "day": when.day}


def rank_level(taxon: SimTaxon) -> float | int | None:
    return taxon.rank_level if taxon.rank_level is not None else RANK_LEVELS.get(taxon.rank)


def iconic_taxon_id(world: World, taxon_id: int) -> int | None:
    """The ancestor named like the taxon's iconic group (Plantae...), as the API's iconic_taxon_id."""
    name = world.iconic_taxon_name(taxon_id)
    for tid in world.ancestor_ids(taxon_id):
        if world.taxa[tid].name == name:
            return tid
    return None


def photo_url(base: str, photo_id: int, size: str = "square", ext: str = "jpg") -> str:
    return f"{base}/photos/{photo_id}/{size}.{ext}?{PHOTO_STAMP}"


def v1_user(user: SimUser | None, user_id: int) -> dict[str, Any]:
    login = user.login if user else f"user{user_id}"
    return {
        "id": user_id, "login": login, "spam": False, "suspended": False,
        "created_at": "2020-01-01T00:00:00+00:00", "login_autocomplete": login, "login_exact": login,
        "name": None, "name_autocomplete": None, "orcid": None, "icon": None, "observations_count": 0,
        "identifications_count": 0, "journal_posts_count": 0, "activity_count": 0, "species_count": 0,
        "universal_search_rank": 0, "roles": [], "site_id": 1, "icon_url": None,
    }


def core_taxon(world: World, taxon_id: int, *, include_self: bool) -> dict[str, Any]:
    """A taxon as in GET /v1/taxa results; `include_self` puts its own id last in ancestor_ids
    (observation taxa do; identification taxa and GET /v1/taxa do not, as in the samples)."""
    taxon = world.taxa[taxon_id]
    chain = world.ancestor_ids(taxon_id)
    parents = chain[:-1]
    return {
        "id": taxon.id, "name": taxon.name, "rank": taxon.rank, "rank_level": rank_level(taxon),
        "ancestor_ids": chain if include_self else parents,
        "ancestry": "/".join(str(t) for t in parents) or None,
        "parent_id": taxon.parent_id, "iconic_taxon_id": iconic_taxon_id(world, taxon_id),
        "iconic_taxon_name": taxon.iconic_taxon_name, "is_active": True, "extinct": False,
        "preferred_common_name": None, "default_photo": None, "observations_count": 0,
        "complete_species_count": None, "wikipedia_url": None, "atlas_id": None,
        "flag_counts": {"unresolved": 0, "resolved": 0}, "current_synonymous_taxon_ids": None,
        "taxon_changes_count": 0, "taxon_schemes_count": 0,
    }


def _embedded_taxon(world: World, taxon_id: int, include_self: bool) -> dict[str, Any]:
    """The fuller taxon embedded in observations and identifications."""
    chain = world.ancestor_ids(taxon_id)
    species = world.taxa[taxon_id].rank in ("species", "subspecies", "variety", "form", "hybrid")
    return {**core_taxon(world, taxon_id, include_self=include_self),
            "min_species_ancestry": ",".join(str(t) for t in chain),
            "min_species_taxon_id": taxon_id if species else None, "universal_search_rank": 0,
            "photos_locked": False, "created_at": "2010-01-01T00:00:00+00:00", "conservation_status": None}


def ancestors(world: World, taxon_id: int) -> list[dict[str, Any]]:
    return [{**core_taxon(world, tid, include_self=False), "complete_rank": None}
            for tid in world.ancestor_ids(taxon_id)[:-1]]


def obs_taxon(world: World, taxon_id: int) -> dict[str, Any]:
    doc = _embedded_taxon(world, taxon_id, include_self=True)
    doc.update({"endemic": False, "threatened": False, "introduced": False, "native": False})
    return doc


def ident_taxon(world: World, taxon_id: int) -> dict[str, Any]:
    return {**_embedded_taxon(world, taxon_id, include_self=False), "ancestors": ancestors(world, taxon_id)}


def show_taxon(world: World, taxon_id: int) -> dict[str, Any]:
    """GET /v1/taxa/{id}: with ancestors[] and children[] like get_taxa_by_id.json."""
    doc = core_taxon(world, taxon_id, include_self=False)
    children = [core_taxon(world, t.id, include_self=False) for t in world.taxa.values()
                if t.parent_id == taxon_id]
    doc.update({"ancestors": ancestors(world, taxon_id), "children": children,
                "conservation_statuses": [], "listed_taxa": [], "listed_taxa_count": 0,
                "taxon_photos": [], "wikipedia_summary": None})
    return doc


def v1_photo(ctx: Ctx, photo_id: int, login: str) -> dict[str, Any]:
    dims = ctx.photos.dimensions(photo_id)
    return {
        "id": photo_id, "license_code": LICENSE, "url": photo_url(ctx.photo_base, photo_id),
        "attribution": f"(c) {login}, some rights reserved (CC BY-NC)",
        "original_dimensions": {"width": dims[0], "height": dims[1]} if dims else None,
        "flags": [],
    }


def v1_identification(ctx: Ctx, obs: SimObservation, ident: SimIdentification) -> dict[str, Any]:
    world = ctx.world
    taxon = ctx.taxon("ident", ident.taxon_id) if ident.taxon_id in world.taxa else None
    return {
        "id": ident.id, "uuid": sim_uuid("identification", ident.id),
        "user": v1_user(world.users.get(ident.user_id), ident.user_id),
        "created_at": ident.created_at, "created_at_details": date_details(ident.created_at),
        "body": ident.body or None, "category": ident.category, "current": ident.current, "flags": [],
        "own_observation": ident.user_id == obs.user_id, "taxon_change": None, "vision": ident.vision,
        "disagreement": None, "previous_observation_taxon_id": obs.taxon_id,
        "previous_observation_taxon": None, "spam": False, "taxon_id": ident.taxon_id,
        "hidden": ident.hidden, "moderator_actions": [], "taxon": taxon,
    }


def v1_comment(ctx: Ctx, comment: SimComment) -> dict[str, Any]:
    return {
        "moderator_actions": [], "hidden": comment.hidden, "flags": [], "created_at": comment.created_at,
        "id": comment.id, "created_at_details": date_details(comment.created_at), "body": comment.body,
        "uuid": sim_uuid("comment", comment.id),
        "user": v1_user(ctx.world.users.get(comment.user_id), comment.user_id),
    }


def v1_ofvs(obs: SimObservation) -> list[dict[str, Any]]:
    return [
        {"field_id": index + 1, "datatype": "text", "user_id": obs.user_id, "updater_id": obs.user_id,
         "value_ci": value, "name": name, "name_ci": name, "taxon_id": None, "id": obs.id * 100 + index,
         "uuid": sim_uuid("ofv", obs.id * 100 + index), "value": value}
        for index, (name, value) in enumerate(obs.ofvs.items())
    ]


def v1_annotations(ctx: Ctx, obs: SimObservation) -> list[dict[str, Any]]:
    """`annotations` in v1's shape (as in samples/get_observation_with_ofvs.json)."""
    return [
        {"uuid": sim_uuid("annotation", obs.id * 100 + index), "controlled_attribute_id": a.attribute_id,
         "controlled_value_id": a.value_id, "concatenated_attr_val": f"{a.attribute_id}|{a.value_id}",
         "vote_score": a.vote_score, "user_id": a.user_id, "votes": [],
         "user": v1_user(ctx.world.users.get(a.user_id), a.user_id)}
        for index, a in enumerate(obs.annotations)
    ]


def v1_observation(ctx: Ctx, obs: SimObservation) -> dict[str, Any]:
    world = ctx.world
    user = world.users.get(obs.user_id)
    login = user.login if user else f"user{obs.user_id}"
    photos = [v1_photo(ctx, pid, login) for pid in obs.photo_ids]
    idents = [v1_identification(ctx, obs, i) for i in obs.identifications]
    current = [i for i in obs.identifications if i.current]
    ident_taxa = sorted({a for i in current if i.taxon_id in world.taxa for a in world.ancestor_ids(i.taxon_id)})
    has_taxon = obs.taxon_id in world.taxa
    details = date_details(obs.created_at)
    observed = obs.observed_at or obs.created_at
    seen = date_details(observed)
    located = obs.latitude is not None and obs.longitude is not None
    return {
        "quality_grade": obs.quality_grade, "taxon_geoprivacy": None,
        "annotations": v1_annotations(ctx, obs),
        "uuid": sim_uuid("observation", obs.id), "observed_on_details": seen, "id": obs.id,
        "cached_votes_total": 0, "identifications_most_agree": False, "created_at": obs.created_at,
        "created_at_details": details, "created_time_zone": "Etc/UTC", "time_zone_offset": "+00:00",
        "time_observed_at": observed, "observed_on": seen["date"], "observed_time_zone": "Etc/UTC",
        "observed_on_string": observed, "updated_at": obs.created_at,
        "species_guess": world.taxa[obs.taxon_id].name if has_taxon and obs.taxon_id else None,
        "identifications_most_disagree": False, "tags": list(obs.tags), "positional_accuracy": obs.positional_accuracy,
        "comments_count": len([c for c in obs.comments if not c.hidden]), "site_id": obs.site_id,
        "license_code": LICENSE, "quality_metrics": [], "public_positional_accuracy": obs.positional_accuracy,
        "reviewed_by": sorted({i.user_id for i in obs.identifications}), "oauth_application_id": None,
        "flags": [], "description": obs.description, "project_ids_with_curator_id": [], "sounds": [],
        "captive": obs.captive, "ident_taxon_ids": ident_taxa, "outlinks": [], "faves_count": 0,
        "ofvs": v1_ofvs(obs), "num_identification_agreements": 0,
        "preferences": {"prefers_community_taxon": None}, "map_scale": 13 if located else None,
        "uri": f"{ctx.site_url}/observations/{obs.id}", "project_ids": list(obs.project_ids),
        "community_taxon_id": obs.community_taxon_id,
        "geojson": {"coordinates": [str(obs.longitude), str(obs.latitude)], "type": "Point"} if located else None,
        "owners_identification_from_vision": False, "identifications_count": len(current),
        "obscured": False, "num_identification_disagreements": 0, "geoprivacy": None,
        "location": f"{obs.latitude},{obs.longitude}" if located else None,
        "private_location": None, "votes": [], "spam": False, "mappable": located,
        "identifications_some_agree": False, "project_ids_without_curator_id": [], "place_guess": obs.place_guess,
        "project_observations": [], "faves": [], "place_ids": list(obs.place_ids),
        "user": v1_user(user, obs.user_id),
        "taxon": ctx.taxon("obs", obs.taxon_id) if has_taxon and obs.taxon_id else None,
        "photos": photos,
        "observation_photos": [
            {"id": obs.id * 100 + pos, "position": pos, "uuid": sim_uuid("observation_photo", pid),
             "photo": photo}
            for pos, (pid, photo) in enumerate(zip(obs.photo_ids, photos, strict=True))
        ],
        "identifications": idents,
        "non_owner_ids": [doc for doc in idents if doc["user"]["id"] != obs.user_id],
        "comments": [v1_comment(ctx, c) for c in obs.comments],
        **obs.served,
    }


def result_page(results: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {"total_results": total, "page": page, "per_page": per_page, "results": results}
