"""The simulator's token authority: OAuth access tokens, authorization codes with PKCE, HS256 JWTs.

Kept apart from the OAuth routes (`oauth.py`) so the routing layer can name it without importing a
route module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier (RFC 7636)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass
class AuthCode:
    user_id: int
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    expires: float


class TokenAuthority:
    """Issues and checks the tokens of one simulator run (the signing key dies with the server)."""

    def __init__(self, clock: Callable[[], float], jwt_ttl: float) -> None:
        self.clock = clock
        self.jwt_ttl = jwt_ttl
        self._key = secrets.token_bytes(32)
        self._access: dict[str, int] = {}
        self._codes: dict[str, AuthCode] = {}
        self._lock = threading.Lock()

    def jwt(self, user_id: int, login: str) -> str:
        header = {"alg": "HS256", "typ": "JWT"}
        now = self.clock()
        claims = {"user_id": user_id, "login": login, "iat": int(now), "exp": int(now + self.jwt_ttl)}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        return f"{signing_input}.{self._sign(signing_input)}"

    def check_jwt(self, token: str) -> dict[str, Any] | None:
        """The claims of a well-signed, unexpired JWT, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        signing_input = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(signing_input), parts[2]):
            return None
        try:
            claims = json.loads(b64url_decode(parts[1]))
        except ValueError:
            return None
        if not isinstance(claims, dict) or float(claims.get("exp", 0)) <= self.clock():
            return None
        return claims

    def _sign(self, signing_input: str) -> str:
        return b64url(hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest())

    def access_token(self, user_id: int) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._access[token] = user_id
        return token

    def check_access_token(self, token: str) -> int | None:
        with self._lock:
            return self._access.get(token)

    def new_code(self, user_id: int, client_id: str, redirect_uri: str, challenge: str, method: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = AuthCode(user_id, client_id, redirect_uri, challenge, method,
                                         self.clock() + 600.0)
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str, verifier: str) -> int | None:
        """The user of a valid, unexpired, single-use code whose PKCE verifier matches, else None."""
        with self._lock:
            grant = self._codes.pop(code, None)
        if grant is None or grant.expires < self.clock():
            return None
        if grant.client_id != client_id or grant.redirect_uri != redirect_uri:
            return None
        if grant.challenge:
            expected = pkce_challenge(verifier) if grant.method == "S256" else verifier
            if not verifier or not hmac.compare_digest(expected, grant.challenge):
                return None
        return grant.user_id
