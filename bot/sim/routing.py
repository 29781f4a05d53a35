"""Plumbing shared by the simulator's route modules: replies, request access, auth, world writes.

Route functions take the server and a `Call` and return a `Reply`; the server turns the reply into
bytes on the socket (or into a fault).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.sim.imagestore import PhotoStore
from bot.sim.model import SimComment, SimIdentification, SimObservation, World
from bot.sim.render import Ctx, json_bytes
from bot.sim.tokens import TokenAuthority


class SimHost(Protocol):
    """What the route modules need of the server (the server satisfies it; no route imports the server)."""

    world: World
    lock: threading.RLock
    tokens: TokenAuthority
    photos: PhotoStore
    oauth_clients: dict[str, str] | None
    clock: Callable[[], float]

    def visible(self, obs: SimObservation) -> bool: ...

    def render_ctx(self, call: Call) -> Ctx: ...

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json_bytes(obj), JSON_TYPE, dict(headers or {}))


def error_reply(status: int, error: str, description: str = "") -> Reply:
    """Errors shaped like the API's ({"error": ..., "status": ...}) and Doorkeeper's descriptions."""
    doc: dict[str, Any] = {"error": error, "status": status}
    if description:
        doc["error_description"] = description
    return json_reply(doc, status)


def html_reply(text: str, status: int = 200) -> Reply:
    return Reply(status, text.encode("utf-8"), "text/html; charset=utf-8")


def redirect_reply(location: str) -> Reply:
    return Reply(302, b"", "text/html; charset=utf-8", {"Location": location})


@dataclass
class RecordedRequest:
    """One request as received; `status` is 0 until answered and stays 0 for a reset."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    time: float  # time.monotonic() at arrival
    status: int = 0
    fault: str | None = None

    @property
    def json(self) -> Any:
        """The JSON body, or form fields (Rails `a[b]` keys nested), None if neither."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            pass
        if "x-www-form-urlencoded" in self.headers.get("content-type", ""):
            return parse_form(self.body)
        return None


@dataclass
class Call:
    """One request as a route sees it: the recorded request, path parameters, where photos live."""

    req: RecordedRequest
    params: dict[str, str]
    photo_base: str

    def values(self, name: str) -> list[str]:
        """All values of a query parameter, `name` or Rails-style `name[]`, comma lists split."""
        raw = self.req.query.get(name, []) + self.req.query.get(f"{name}[]", [])
        return [part.strip() for value in raw for part in value.split(",") if part.strip()]

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None

    def int_value(self, name: str, default: int) -> int:
        text = self.value(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise BadRequest(f"{name} must be an integer, got {text!r}") from None

    def bearer(self) -> str:
        auth = self.req.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else auth.strip()

    def body_fields(self) -> dict[str, Any]:
        doc = self.req.json
        return doc if isinstance(doc, dict) else {}


class BadRequest(Exception):
    """A malformed request: answered 422 with the message."""


Route = tuple[str, "re.Pattern[str]", Callable[[SimHost, Call], Reply]]


def route(method: str, pattern: str, func: Callable[[SimHost, Call], Reply]) -> Route:
    return (method, re.compile(f"^{pattern}$"), func)


def parse_form(body: bytes) -> dict[str, Any]:
    """Form fields, with Rails-style `a[b]` keys nested into {"a": {"b": ...}}."""
    doc: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        outer, bracket, inner = key.partition("[")
        if bracket and inner.endswith("]") and inner[:-1]:
            sub = doc.setdefault(outer, {})
            if isinstance(sub, dict):
                sub[inner[:-1]] = value
        else:
            doc[key] = value
    return doc


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def to_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer, got {value!r}") from None


def to_time(value: Any, name: str) -> datetime:
    """A date or date-time query value as an aware datetime (a bare date: its midnight, UTC)."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be a date or a date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "yes", "on")
    return bool(value)


def add_identification(world: World, obs: SimObservation, user_id: int, taxon_id: int, body: str) -> SimIdentification:
    """Stores an identification like iNaturalist: the user's earlier IDs on it stop being current."""
    for earlier in obs.identifications:
        if earlier.user_id == user_id:
            earlier.current = False
    ident = SimIdentification(id=world.next_id("identification"), user_id=user_id, taxon_id=taxon_id,
                              body=body, created_at=now_iso())
    obs.identifications.append(ident)
    return ident


def add_comment(world: World, obs: SimObservation, user_id: int, body: str) -> SimComment:
    comment = SimComment(id=world.next_id("comment"), user_id=user_id, body=body, created_at=now_iso())
    obs.comments.append(comment)
    return comment


def find_identification(world: World, ident_id: int) -> tuple[SimObservation, SimIdentification] | None:
    for obs in world.observations.values():
        for ident in obs.identifications:
            if ident.id == ident_id:
                return obs, ident
    return None


def find_comment(world: World, comment_id: int) -> tuple[SimObservation, SimComment] | None:
    for obs in world.observations.values():
        for comment in obs.comments:
            if comment.id == comment_id:
                return obs, comment
    return None
