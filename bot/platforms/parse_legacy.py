"""Parsing the older Rails API (`/observations.json`, served by independent iNaturalist forks).

Differences from v1: the list is a bare JSON array; the user is `user_id` plus `user.login`; photos
carry one URL per size (`medium_url`, ...) and no position; a taxon has an `ancestry` slash string
without its own id; tags are `tag_list`.  Same contract as v1: parse or Rejected, never raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain import Comment, Identification, Observation, Photo, Taxon, User
from bot.platforms.parse_v1 import (
    ParseError,
    as_dict,
    as_list,
    comment_of,
    identification_of,
    observed_time,
    opt_accuracy,
    opt_bool,
    opt_int,
    opt_str,
    opt_text,
    opt_time,
    parse_annotations,
    parse_discussion,
    parse_field_values,
    parse_location,
    parse_taxon,
    req_int,
    req_str,
    unique_photos,
)

PHOTO_URL_KEYS = ("medium_url", "large_url", "small_url", "original_url", "square_url", "thumb_url", "url")


def parse_legacy_user(d: Mapping[str, Any], what: str = "") -> User:
    """`user_id` at the record's top level (or `user.id`), login from `user_login` or `user.login`."""
    user = d.get("user")
    user_d = as_dict(user, f"{what}user") if user is not None else {}
    uid = d.get("user_id") if d.get("user_id") is not None else user_d.get("id")
    login = d.get("user_login") if d.get("user_login") is not None else user_d.get("login")
    return User(id=req_int(uid, f"{what}user_id"), login=req_str(login, f"{what}user.login"))


def parse_legacy_photos(raw: Any) -> tuple[Photo, ...]:
    photos = []
    for i, p in enumerate(as_list(raw, "photos")):
        p = as_dict(p, f"photos[{i}]")
        url = next((p[k] for k in PHOTO_URL_KEYS if isinstance(p.get(k), str) and p[k]), None)
        if url is None:
            raise ParseError(f"photos[{i}]: no photo URL (medium_url, large_url, ...)")
        photos.append(Photo(id=req_int(p.get("id"), f"photos[{i}].id"), url=url, position=i,
                            license_code=opt_str(p.get("license_code"), f"photos[{i}].license_code")))
    return unique_photos(photos)


def parse_legacy_taxon(raw: Any, what: str = "taxon") -> Taxon | None:
    """Taxa from `ancestry` plus the taxon's own id (parse_taxon does both shapes)."""
    return parse_taxon(raw, what)


def parse_legacy_identification(raw: Any, what: str) -> Identification:
    d = as_dict(raw, what)
    return identification_of(d, what, parse_legacy_user(d, f"{what}."),
                             parse_legacy_taxon(d.get("taxon"), f"{what}.taxon"))


def parse_legacy_comment(raw: Any, what: str) -> Comment:
    d = as_dict(raw, what)
    return comment_of(d, what, parse_legacy_user(d, f"{what}."))


def _iconic_name(d: Mapping[str, Any], taxon: Taxon | None) -> str | None:
    top = opt_str(d.get("iconic_taxon_name"), "iconic_taxon_name")
    if top is None and d.get("iconic_taxon") is not None:
        top = opt_str(as_dict(d["iconic_taxon"], "iconic_taxon").get("name"), "iconic_taxon.name")
    return top or (taxon.iconic_taxon_name if taxon else None)


def parse_legacy_observation(raw: Any) -> Observation:
    d = as_dict(raw, "observation")
    oid = req_int(d.get("id"), "id")
    taxon = parse_legacy_taxon(d.get("taxon"))
    tags = d.get("tag_list") if d.get("tag_list") is not None else d.get("tags")
    location = parse_location((d.get("latitude"), d.get("longitude")))
    return Observation(
        id=oid,
        user=parse_legacy_user(d),
        photos=parse_legacy_photos(d.get("photos")),
        taxon=taxon,
        community_taxon_id=opt_int(d.get("community_taxon_id"), "community_taxon_id"),
        iconic_taxon_name=_iconic_name(d, taxon),
        captive=opt_bool(d.get("captive"), "captive"),
        quality_grade=opt_str(d.get("quality_grade"), "quality_grade"),
        **parse_discussion(d, parse_legacy_identification, parse_legacy_comment),
        tags=tuple(req_str(t, "tag_list") for t in as_list(tags, "tag_list")),
        field_values=parse_field_values(d.get("observation_field_values") or d.get("ofvs")),
        annotations=parse_annotations(d.get("annotations")),  # a fork newer than controlled terms only
        uri=opt_str(d.get("uri"), "uri"),
        created_at=opt_time(d.get("created_at_utc") or d.get("created_at")),
        uuid=opt_str(d.get("uuid"), "uuid"),
        observed_at=observed_time(d, "time_observed_at_utc", "time_observed_at", "observed_on"),
        place_guess=opt_text(d.get("place_guess")),
        latitude=location[0] if location else None,
        longitude=location[1] if location else None,
        positional_accuracy=opt_accuracy(d.get("positional_accuracy")),
        description=opt_text(d.get("description")),
    )
