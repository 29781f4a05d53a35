"""Parsing iNaturalist API v1 JSON into domain records, defensively.

JSON from a public API is written by strangers and changes over the years, so every field is checked:
an observation that cannot be used becomes a `Rejected` with a one-line reason, and nothing raises
out of `parse_results` whatever the input (tested with mutated real responses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from bot.domain import Comment, Identification, Observation, Photo, Taxon, User
from bot.platforms.base import Rejected

log = logging.getLogger(__name__)
T = TypeVar("T")


class ParseError(ValueError):
    """A field has the wrong shape; the message names it."""


def parse_each(items: Any, parse: Callable[[Any, str], T], what: str) -> list[T]:
    """Parse each record (of either flavor), leaving out (and logging) the ones that do not parse."""
    out: list[T] = []
    for i, raw in enumerate(items if isinstance(items, list) else []):
        try:
            out.append(parse(raw, f"{what}[{i}]"))
        except (ParseError, ValueError, TypeError) as exc:
            log.warning("skipping an unparseable %s: %s", what, exc)
    return out


# --- small typed getters: each says which field was wrong -------------------------------------------


def as_dict(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ParseError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{what}: expected a list, got {type(value).__name__}")
    return value


def req_int(value: Any, what: str) -> int:
    """An id: an int, or a string of digits (older APIs send some ids as strings)."""
    if isinstance(value, bool):
        raise ParseError(f"{what}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ParseError(f"{what}: expected an integer, got {value!r:.40}")


def opt_int(value: Any, what: str) -> int | None:
    return None if value is None or value == "" else req_int(value, what)


def req_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ParseError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def opt_str(value: Any, what: str) -> str | None:
    return None if value is None else req_str(value, what)


def opt_bool(value: Any, what: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ParseError(f"{what}: expected true or false, got {value!r:.40}")
    return value


def opt_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(f"{what}: expected a number, got {value!r:.40}")
    return float(value)


def opt_time(value: Any) -> datetime | None:
    """Timestamps are informative only: an unreadable one becomes None instead of a rejection."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def ancestry_ids(value: Any, what: str) -> tuple[int, ...]:
    """The Rails `ancestry` string "48460/1/47120" as ids, root first."""
    text = req_str(value, what)
    return tuple(req_int(part, what) for part in text.split("/") if part)


# --- records ---------------------------------------------------------------------------------------------


def parse_user(raw: Any, what: str = "user") -> User:
    d = as_dict(raw, what)
    return User(id=req_int(d.get("id"), f"{what}.id"), login=req_str(d.get("login"), f"{what}.login"))


def parse_taxon(raw: Any, what: str = "taxon") -> Taxon | None:
    """A taxon; `ancestor_ids` always ends with the taxon's own id (v1 omits it in some places)."""
    if raw is None:
        return None
    d = as_dict(raw, what)
    tid = req_int(d.get("id"), f"{what}.id")
    if d.get("ancestor_ids") is not None:
        ancestors = tuple(req_int(a, f"{what}.ancestor_ids") for a in as_list(d["ancestor_ids"], what))
    elif d.get("ancestry") is not None:
        ancestors = ancestry_ids(d["ancestry"], f"{what}.ancestry")
    else:
        ancestors = ()
    if not ancestors or ancestors[-1] != tid:
        ancestors = (*ancestors, tid)
    return Taxon(
        id=tid,
        name=req_str(d.get("name"), f"{what}.name"),
        rank=req_str(d.get("rank"), f"{what}.rank"),
        ancestor_ids=ancestors,
        rank_level=opt_float(d.get("rank_level"), f"{what}.rank_level"),
        iconic_taxon_name=opt_str(d.get("iconic_taxon_name"), f"{what}.iconic_taxon_name"),
        preferred_common_name=opt_str(d.get("preferred_common_name"), f"{what}.preferred_common_name"),
    )


def parse_identification(raw: Any, what: str = "identification") -> Identification:
    d = as_dict(raw, what)
    return Identification(
        id=req_int(d.get("id"), f"{what}.id"),
        user=parse_user(d.get("user"), f"{what}.user"),
        taxon=parse_taxon(d.get("taxon"), f"{what}.taxon"),
        current=opt_bool(d.get("current"), f"{what}.current", default=True),
        body=opt_str(d.get("body"), f"{what}.body"),
        category=opt_str(d.get("category"), f"{what}.category"),
        vision=opt_bool(d.get("vision"), f"{what}.vision"),
        created_at=opt_time(d.get("created_at")),
        hidden=opt_bool(d.get("hidden"), f"{what}.hidden"),
    )


def parse_comment(raw: Any, what: str = "comment") -> Comment:
    d = as_dict(raw, what)
    return Comment(
        id=req_int(d.get("id"), f"{what}.id"),
        user=parse_user(d.get("user"), f"{what}.user"),
        body=opt_str(d.get("body"), f"{what}.body") or "",
        created_at=opt_time(d.get("created_at")),
        hidden=opt_bool(d.get("hidden"), f"{what}.hidden"),
    )


def parse_photos(d: Mapping[str, Any]) -> tuple[Photo, ...]:
    """Photos in `observation_photos` position order; the bare `photos` list when that is absent."""
    ops = as_list(d.get("observation_photos"), "observation_photos")
    if ops:
        photos = []
        for i, op in enumerate(ops):
            op = as_dict(op, f"observation_photos[{i}]")
            pos = opt_int(op.get("position"), f"observation_photos[{i}].position")
            photos.append(_photo(op.get("photo"), f"observation_photos[{i}].photo", i if pos is None else pos))
        return tuple(sorted(photos, key=lambda p: p.position))
    return tuple(_photo(p, f"photos[{i}]", i) for i, p in enumerate(as_list(d.get("photos"), "photos")))


def _photo(raw: Any, what: str, position: int) -> Photo:
    p = as_dict(raw, what)
    url = req_str(p.get("url"), f"{what}.url")
    if not url:
        raise ParseError(f"{what}.url: empty")
    return Photo(id=req_int(p.get("id"), f"{what}.id"), url=url, position=position,
                 license_code=opt_str(p.get("license_code"), f"{what}.license_code"))


def parse_field_values(raw: Any) -> dict[str, str]:
    """Observation field values by field name (values as text; empty ones left out)."""
    values: dict[str, str] = {}
    for i, ofv in enumerate(as_list(raw, "ofvs")):
        ofv = as_dict(ofv, f"ofvs[{i}]")
        name_raw = ofv.get("name")
        if name_raw is None and isinstance(ofv.get("observation_field"), Mapping):  # the Rails shape
            name_raw = ofv["observation_field"].get("name")
        name = req_str(name_raw, f"ofvs[{i}].name")
        value = ofv.get("value")
        if value is None:
            continue
        if isinstance(value, dict | list):
            raise ParseError(f"ofvs[{i}].value: expected a scalar, got {type(value).__name__}")
        values[name] = str(value)
    return values


def parse_observation(raw: Any) -> Observation:
    """One v1 observation; raises ParseError (or another ValueError) on a shape it cannot use."""
    d = as_dict(raw, "observation")
    oid = req_int(d.get("id"), "id")
    taxon = parse_taxon(d.get("taxon"))
    top_iconic = opt_str(d.get("iconic_taxon_name"), "iconic_taxon_name")
    return Observation(
        id=oid,
        user=parse_user(d.get("user")),
        photos=parse_photos(d),
        taxon=taxon,
        community_taxon_id=opt_int(d.get("community_taxon_id"), "community_taxon_id"),
        iconic_taxon_name=(taxon.iconic_taxon_name if taxon else None) or top_iconic,
        captive=opt_bool(d.get("captive"), "captive"),
        quality_grade=opt_str(d.get("quality_grade"), "quality_grade"),
        identifications=tuple(parse_identification(x, f"identifications[{i}]")
                              for i, x in enumerate(as_list(d.get("identifications"), "identifications"))),
        comments=tuple(parse_comment(x, f"comments[{i}]")
                       for i, x in enumerate(as_list(d.get("comments"), "comments"))),
        tags=tuple(req_str(t, "tags") for t in as_list(d.get("tags"), "tags")),
        field_values=parse_field_values(d.get("ofvs")),
        uri=opt_str(d.get("uri"), "uri"),
        created_at=opt_time(d.get("created_at")),
        uuid=opt_str(d.get("uuid"), "uuid"),
    )


def raw_id(raw: Any) -> int | None:
    """The id of a raw record when it has a usable one (for Rejected and for the cursor)."""
    if isinstance(raw, Mapping):
        try:
            return req_int(raw.get("id"), "id")
        except ParseError:
            return None
    return None


def safe_parse(raw: Any, parse: Any) -> Observation | Rejected:
    """`parse(raw)` or a Rejected naming why; never raises (a parser bug must not stop the poll)."""
    try:
        result: Observation = parse(raw)
        return result
    except ParseError as exc:
        return Rejected(raw_id(raw), str(exc))
    except Exception as exc:  # defensive: unexpected shapes must not stop the cycle
        log.warning("unexpected parse failure for observation %s: %r", raw_id(raw), exc)
        return Rejected(raw_id(raw), f"unparseable observation ({type(exc).__name__}: {exc})"[:300])


def parse_results(doc: Any, parse: Any = parse_observation,
                  key: str | None = "results") -> tuple[list[Observation], list[Rejected], int]:
    """A page of results: (observations, rejected, highest id seen), never raising.

    `key=None` means the document itself is the list (the legacy API).
    """
    if key is not None:
        if not isinstance(doc, Mapping):
            raise ParseError(f"expected a JSON object with {key!r}, got {type(doc).__name__}")
        items = doc.get(key)
    else:
        items = doc
    if not isinstance(items, list):
        raise ParseError(f"expected a list of observations, got {type(items).__name__}")
    observations: list[Observation] = []
    rejected: list[Rejected] = []
    last_id = 0
    for raw in items:
        rid = raw_id(raw)
        if rid is not None:
            last_id = max(last_id, rid)
        result = safe_parse(raw, parse)
        if isinstance(result, Rejected):
            rejected.append(result)
        else:
            observations.append(result)
    return observations, rejected, last_id
