"""Server-side moderator sessions and CSRF tokens.

The browser only ever holds a signed cookie with a random session id and a CSRF token; the
moderator's API token (a JWT that can post under their name) stays in this process's memory, so it
is never rendered into a page, sent back to the browser, or written to disk.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import abort, request, session
from flask_babel import gettext as _

SESSION_ID = "sid"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"


@dataclass
class Moderator:
    login: str
    user_id: int | None
    token: str = field(repr=False)  # the platform API token; never rendered or logged
    signed_in_at: float = field(default_factory=time.monotonic)


class TokenVault:
    """Moderators signed in to this process, keyed by an unguessable session id.

    Entries expire after `ttl_s` (iNaturalist JWTs last 24 h; we ask for a fresh sign-in sooner).
    A restart signs everyone out, which is the safe default for tokens kept only in memory.
    """

    def __init__(self, ttl_s: float = 20 * 3600) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._items: dict[str, Moderator] = {}

    def put(self, moderator: Moderator) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            self._items[sid] = moderator
        return sid

    def get(self, sid: str | None) -> Moderator | None:
        if not sid:
            return None
        with self._lock:
            self._expire()
            return self._items.get(sid)

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._items.pop(sid, None)

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [k for k, m in self._items.items() if now - m.signed_in_at > self.ttl_s]:
            del self._items[sid]


def csrf_token() -> str:
    """The session's CSRF token, created on first use; templates put it in every POST form."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def check_csrf() -> None:
    """Aborts with 400 unless the form carries this session's CSRF token."""
    expected = session.get(CSRF_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(expected, sent):
        abort(400, description=_("The form was missing its security token or it expired. Reload the page "
                                 "and try again."))


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-origin paths are followed after sign-in or an action (no open redirect).

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so "/\t/evil.example"
    becomes "//evil.example": any control character, whitespace or backslash refuses the target, as does
    anything with a scheme or an authority.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in target):
        return default
    try:
        parts = urlsplit(target)
    except ValueError:
        return default
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    return target


@dataclass
class PendingSignIn:
    verifier: str = field(repr=False)
    next: str
    started_at: float = field(default_factory=time.monotonic)


class PendingSignIns:
    """OAuth sign-ins under way, keyed by their `state`: the PKCE verifier stays on the server.

    The browser's cookie is signed but readable, so it carries only the state; whoever reads it learns
    nothing that would let them finish the sign-in with an intercepted code.
    """

    def __init__(self, ttl_s: float = 600.0, max_items: int = 1000) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._lock = threading.Lock()
        self._items: dict[str, PendingSignIn] = {}

    def put(self, state: str, pending: PendingSignIn) -> None:
        with self._lock:
            self._expire()
            while len(self._items) >= self.max_items:
                self._items.pop(next(iter(self._items)))
            self._items[state] = pending

    def pop(self, state: str) -> PendingSignIn | None:
        with self._lock:
            self._expire()
            return self._items.pop(state, None) if state else None

    def _expire(self) -> None:
        now = time.monotonic()
        for state in [k for k, p in self._items.items() if now - p.started_at > self.ttl_s]:
            del self._items[state]
