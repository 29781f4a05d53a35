"""The simulator's sign-in: OAuth access tokens, authorization codes with PKCE, and HS256 JWTs.

It mirrors what iNaturalist's Rails site does (Doorkeeper OAuth, `/users/api_token` handing out a
24 h JWT) closely enough that PlantBot's real client code and the review UI's sign-in run unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
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


SIGN_IN_FIELDS = ("client_id", "redirect_uri", "response_type", "code_challenge", "code_challenge_method",
                  "state", "scope")


def sign_in_page(params: dict[str, str], error: str = "") -> str:
    """The HTML sign-in form of GET /oauth/authorize; it posts back with the OAuth parameters hidden."""
    hidden = "\n".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
        for name in SIGN_IN_FIELDS if params.get(name)
    )
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · iNaturalist simulator</title></head>
<body>
<h1>Sign in</h1>
<p>Application <b>{html.escape(params.get("client_id", ""))}</b> wants to access your account.</p>
{message}
<form method="post" action="/oauth/authorize">
{hidden}
<label>Username or email <input type="text" name="login" id="login" autocomplete="username"></label>
<label>Password <input type="password" name="password" id="password" autocomplete="current-password"></label>
<button type="submit" name="commit" value="Sign in">Sign in</button>
</form>
</body></html>
"""


def error_page(message: str) -> str:
    return f"<!DOCTYPE html><html><body><h1>OAuth error</h1><p>{html.escape(message)}</p></body></html>"
