"""Parsing iNaturalist API v1 JSON into domain records, defensively.

JSON from a public API is written by strangers and changes over the years, so every field is checked:
an observation that cannot be used becomes a `Rejected` with a one-line reason, and nothing raises
out of `parse_results` whatever the input (tested with mutated real responses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from bot.domain import Annotation, Comment, Identification, Observation, Photo, Taxon, User
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


MAX_ID = 2**53  # the largest integer JSON readers in every language agree on; the store's ids are 64-bit


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ParseError(f"{what}: expected an integer, got a boolean ({value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 20:
        return int(value.strip())
    raise ParseError(f"{what}: expected an integer, got {value!r:.40}")


def req_int(value: Any, what: str) -> int:
    """An id: an int, or a string of digits (older APIs send some ids as strings), within 1..2^53.

    An id outside that range cannot be a real record, and one beyond 64 bits would overflow the store.
    """
    number = _as_int(value, what)
    if not 1 <= number <= MAX_ID:
        raise ParseError(f"{what}: {str(number)[:40]} is outside the usable id range 1..2^53")
    return number


def opt_position(value: Any, what: str) -> int | None:
    """A photo position: a small non-negative integer (None when absent)."""
    if value is None or value == "":
        return None
    number = _as_int(value, what)
    if not 0 <= number < 2**31:
        raise ParseError(f"{what}: {str(number)[:40]} is not a usable position")
    return number


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


def identification_of(d: Mapping[str, Any], what: str, user: User, taxon: Taxon | None, *,
                      hidden: bool = False) -> Identification:
    """An identification from the fields both APIs name alike; the caller reads the user and the taxon
    its own API's way (legacy sends no `hidden`)."""
    return Identification(
        id=req_int(d.get("id"), f"{what}.id"), user=user, taxon=taxon,
        current=opt_bool(d.get("current"), f"{what}.current", default=True),
        body=opt_str(d.get("body"), f"{what}.body"),
        category=opt_str(d.get("category"), f"{what}.category"),
        vision=opt_bool(d.get("vision"), f"{what}.vision"),
        created_at=opt_time(d.get("created_at")),
        hidden=hidden,
    )


def comment_of(d: Mapping[str, Any], what: str, user: User) -> Comment:
    """A comment from the fields both APIs name alike; the caller reads the user its own API's way."""
    return Comment(id=req_int(d.get("id"), f"{what}.id"), user=user,
                   body=opt_str(d.get("body"), f"{what}.body") or "", created_at=opt_time(d.get("created_at")),
                   hidden=opt_bool(d.get("hidden"), f"{what}.hidden"))


def parse_discussion(d: Mapping[str, Any], identification: Callable[[Any, str], Identification],
                     comment: Callable[[Any, str], Comment]) -> dict[str, Any]:
    """An observation's identifications and comments (as Observation's keyword arguments), each read
    by the API's own parser."""
    return {"identifications": tuple(identification(x, f"identifications[{i}]") for i, x in
                                     enumerate(as_list(d.get("identifications"), "identifications"))),
            "comments": tuple(comment(x, f"comments[{i}]") for i, x in
                              enumerate(as_list(d.get("comments"), "comments")))}


def parse_identification(raw: Any, what: str = "identification") -> Identification:
    d = as_dict(raw, what)
    return identification_of(d, what, parse_user(d.get("user"), f"{what}.user"),
                             parse_taxon(d.get("taxon"), f"{what}.taxon"),
                             hidden=opt_bool(d.get("hidden"), f"{what}.hidden"))


def parse_comment(raw: Any, what: str = "comment") -> Comment:
    d = as_dict(raw, what)
    return comment_of(d, what, parse_user(d.get("user"), f"{what}.user"))


def parse_photos(d: Mapping[str, Any]) -> tuple[Photo, ...]:
    """Photos in `observation_photos` position order; the bare `photos` list when that is absent."""
    ops = as_list(d.get("observation_photos"), "observation_photos")
    if ops:
        photos = []
        for i, op in enumerate(ops):
            op = as_dict(op, f"observation_photos[{i}]")
            pos = opt_position(op.get("position"), f"observation_photos[{i}].position")
            photos.append(_photo(op.get("photo"), f"observation_photos[{i}].photo", i if pos is None else pos))
        return unique_photos(sorted(photos, key=lambda p: p.position))
    return unique_photos(_photo(p, f"photos[{i}]", i) for i, p in enumerate(as_list(d.get("photos"), "photos")))


def unique_photos(photos: Iterable[Photo]) -> tuple[Photo, ...]:
    """Each photo id once (the first listing wins): a photo listed twice is one photo, not a rejection."""
    seen: dict[int, Photo] = {}
    for photo in photos:
        if photo.id in seen:
            log.info("photo %s is listed twice; keeping it once", photo.id)
        seen.setdefault(photo.id, photo)
    return tuple(seen.values())


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


def parse_annotations(raw: Any) -> tuple[Annotation, ...]:
    """`annotations: [{controlled_attribute_id, controlled_value_id, vote_score}, ...]`; one without both
    ids is left out (a stranger's record may be half-written), a wrong type is a ParseError."""
    found: list[Annotation] = []
    for i, item in enumerate(as_list(raw, "annotations")):
        a = as_dict(item, f"annotations[{i}]")
        attribute = opt_int(a.get("controlled_attribute_id"), f"annotations[{i}].controlled_attribute_id")
        value = opt_int(a.get("controlled_value_id"), f"annotations[{i}].controlled_value_id")
        if attribute is not None and value is not None:
            found.append(Annotation(attribute, value, _vote_score(a.get("vote_score"), f"annotations[{i}].vote_score")))
    return tuple(found)


def _vote_score(value: Any, what: str) -> int:
    """Agreements minus disagreements: any integer, 0 when absent."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31:
        return value
    raise ParseError(f"{what}: expected an integer, got {value!r:.40}")


def parse_observation(raw: Any) -> Observation:
    """One v1 observation; raises ParseError (or another ValueError) on a shape it cannot use."""
    d = as_dict(raw, "observation")
    oid = req_int(d.get("id"), "id")
    taxon = parse_taxon(d.get("taxon"))
    top_iconic = opt_str(d.get("iconic_taxon_name"), "iconic_taxon_name")
    location = parse_location(d.get("location"))
    return Observation(
        id=oid,
        user=parse_user(d.get("user")),
        photos=parse_photos(d),
        taxon=taxon,
        community_taxon_id=opt_int(d.get("community_taxon_id"), "community_taxon_id"),
        iconic_taxon_name=(taxon.iconic_taxon_name if taxon else None) or top_iconic,
        captive=opt_bool(d.get("captive"), "captive"),
        quality_grade=opt_str(d.get("quality_grade"), "quality_grade"),
        **parse_discussion(d, parse_identification, parse_comment),
        tags=tuple(req_str(t, "tags") for t in as_list(d.get("tags"), "tags")),
        field_values=parse_field_values(d.get("ofvs")),
        annotations=parse_annotations(d.get("annotations")),
        uri=opt_str(d.get("uri"), "uri"),
        created_at=opt_time(d.get("created_at")),
        uuid=opt_str(d.get("uuid"), "uuid"),
        observed_at=observed_time(d, "time_observed_at", "observed_on"),
        place_guess=opt_text(d.get("place_guess")),
        latitude=location[0] if location else None,
        longitude=location[1] if location else None,
        positional_accuracy=opt_accuracy(d.get("positional_accuracy")),
        description=opt_text(d.get("description")),
    )


def opt_text(value: Any) -> str | None:
    """Free text shown to moderators: a string, or None when absent, empty or not text."""
    return value.strip() or None if isinstance(value, str) else None


def parse_location(raw: Any, what: str = "location") -> tuple[float, float] | None:
    """Latitude and longitude from v1's "lat,lng" string (or the legacy's separate fields); None when
    absent or out of range, so a bad coordinate never rejects an observation."""
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, str):
            lat_s, lng_s = raw.split(",", 1)
            lat, lng = float(lat_s), float(lng_s)
        else:
            lat, lng = float(raw[0]), float(raw[1])
    except (ValueError, TypeError, IndexError):
        log.debug("%s: unreadable coordinates %r", what, raw)
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        return None
    return lat, lng


def opt_accuracy(value: Any) -> int | None:
    """Positional accuracy in metres: informative only, so an odd value becomes None."""
    try:
        return None if value is None or value == "" or isinstance(value, bool) else max(0, int(float(value)))
    except (ValueError, TypeError):
        return None


def observed_time(d: Mapping[str, Any], *keys: str) -> datetime | None:
    """The first readable of `keys` (a timestamp or a bare date)."""
    for key in keys:
        value = opt_time(d.get(key))
        if value is not None:
            return value
    return None


def raw_id(raw: Any) -> int | None:
    """The id of a raw record when it has a usable one (for Rejected and for the cursor)."""
    if isinstance(raw, Mapping):
        try:
            return req_int(raw.get("id"), "id")
        except ParseError:
            return None
    return None


def raw_id_text(raw: Any) -> str:
    """The raw id as served (`repr`, cut short), so a rejected record can be told apart from others."""
    value = raw.get("id") if isinstance(raw, Mapping) else raw
    return repr(value)[:60]


def safe_parse(raw: Any, parse: Any) -> Observation | Rejected:
    """`parse(raw)` or a Rejected naming why; never raises (a parser bug must not stop the poll)."""
    try:
        result: Observation = parse(raw)
        return result
    except ParseError as exc:
        return Rejected(raw_id(raw), str(exc), raw_id_text(raw))
    except Exception as exc:  # defensive: unexpected shapes must not stop the cycle
        log.warning("unexpected parse failure for observation %s: %r", raw_id_text(raw), exc)
        return Rejected(raw_id(raw), f"unparseable observation ({type(exc).__name__}: {exc})"[:300],
                        raw_id_text(raw))


def parse_results(doc: Any, parse: Any = parse_observation, key: str | None = "results", *, cursor: int = 0,
                  max_jump: int = 0) -> tuple[list[Observation], list[Rejected], int]:
    """A page of results: (observations, rejected, highest usable id), never raising.

    Each id is used once (a second record with the same id is rejected). With `max_jump`, ids that jump
    implausibly far past the cursor (see `plausible_ids`) are rejected too, so the returned highest id,
    the next cursor, is always the id of a record the caller can store. `key=None` means the document
    itself is the list (the legacy API).
    """
    if key is not None:
        if not isinstance(doc, Mapping):
            raise ParseError(f"expected a JSON object with {key!r}, got {type(doc).__name__}")
        items = doc.get(key)
    else:
        items = doc
    if not isinstance(items, list):
        raise ParseError(f"expected a list of observations, got {type(items).__name__}")
    results = [safe_parse(raw, parse) for raw in items]
    ids = [r.id if isinstance(r, Observation) else r.observation_id for r in results]
    _, suspicious = plausible_ids(cursor, [i for i in ids if i is not None], max_jump)
    parsed = {r.id for r in results if isinstance(r, Observation)}
    observations: list[Observation] = []
    rejected: list[Rejected] = []
    used: set[int] = set()
    for raw, result, rid in zip(items, results, ids, strict=True):
        if rid is not None and rid in suspicious:
            rejected.append(Rejected(None, f"suspicious id {rid}: more than {max_jump:,} ids past the previous "
                                           "one; not stored, the cursor stays", raw_id_text(raw)))
            log.warning("observation id %s jumps implausibly far past the cursor %s; ignored", rid, cursor)
        elif isinstance(result, Rejected):  # a broken copy of a good record must not decide it
            rejected.append(replace(result, observation_id=None) if rid in parsed else result)
        elif result.id in used:
            rejected.append(Rejected(None, f"duplicate observation id {rid} on one page", raw_id_text(raw)))
        else:
            observations.append(result)
            used.add(result.id)
    stored = used | {r.observation_id for r in rejected if r.observation_id is not None}
    last_id = max(stored, default=0)
    return observations, rejected, last_id


def plausible_ids(cursor: int, ids: Iterable[int], max_jump: int) -> tuple[list[int], set[int]]:
    """(accepted ids ascending, suspicious ids): an id more than `max_jump` past the previous accepted one
    (the cursor first, when there is one) is suspicious. One bogus huge id must never carry the cursor past
    every real observation to come. `max_jump` 0 accepts everything."""
    accepted: list[int] = []
    suspicious: set[int] = set()
    previous = cursor if cursor > 0 else None
    for oid in sorted(set(ids)):
        if max_jump > 0 and previous is not None and oid - previous > max_jump:
            suspicious.add(oid)
            continue
        accepted.append(oid)
        previous = oid
    return accepted, suspicious
