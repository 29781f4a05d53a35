"""The bot account's own token: from the environment, or the OAuth password grant.

iNaturalist v1 wants a JWT (24 h); it is bought with an OAuth access token at `/users/api_token`.
The legacy Rails API takes the OAuth access token itself, which does not expire there.  A JWT is
renewed an hour before its end and once after a 401.  Tokens are never logged.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable

from bot.config import Secrets
from bot.errors import AuthError, PlatformError
from bot.platforms.session import Http

log = logging.getLogger(__name__)

JWT_LIFETIME = 24 * 3600.0
RENEW_MARGIN = 3600.0


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, when it is one we can read (no signature check: it is ours)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return float(claims["exp"]) if isinstance(claims, dict) and "exp" in claims else None
    except (ValueError, TypeError, KeyError):
        return None


def looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ")


def exchange_code(http: Http, site_url: str, flavor: str, *, client_id: str, client_secret: str | None,
                  code: str, verifier: str, redirect_uri: str) -> str:
    """A moderator's sign-in: OAuth code (with its PKCE verifier) -> access token -> API token (JWT).

    Legacy forks use the access token itself.  Goes through the shared session (rate limiter, retries,
    User-Agent) like every other request; a refusal (HTTP 400/401/403) is an AuthError.
    """
    site = site_url.rstrip("/")
    form = {"grant_type": "authorization_code", "client_id": client_id, "code": code,
            "redirect_uri": redirect_uri, "code_verifier": verifier}
    if client_secret:
        form["client_secret"] = client_secret
    try:
        access = _field(http.request("POST", f"{site}/oauth/token", data=form, sign_in=True), "access_token")
    except PlatformError as exc:
        if exc.status in (400, 401, 403):
            raise AuthError(f"token exchange answered HTTP {exc.status}", status=exc.status) from None
        raise
    if flavor == "legacy":
        return access
    try:
        return _field(http.request("GET", f"{site}/users/api_token", token=access), "api_token")
    except PlatformError as exc:
        if exc.status in (401, 403):
            raise AuthError(f"API token request answered HTTP {exc.status}", status=exc.status) from None
        raise


def _field(doc: object, name: str) -> str:
    value = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value:
        raise AuthError(f"the platform's answer had no {name}")
    return value


class TokenProvider:
    """Hands out the bot's token, renewing it when it is about to expire or was refused."""

    def __init__(self, http: Http, secrets: Secrets, site_url: str, flavor: str,
                 clock: Callable[[], float]) -> None:
        self.http = http
        self.secrets = secrets
        self.site_url = site_url.rstrip("/")
        self.flavor = flavor
        self.clock = clock
        self._token: str | None = None
        self._expires: float | None = None
        self._access: str | None = None  # OAuth access token from the password grant
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        s = self.secrets
        return bool(s.api_token or (s.app_id and s.app_secret and s.username and s.password))

    @property
    def renewable(self) -> bool:
        s = self.secrets
        grant = bool(s.app_id and s.app_secret and s.username and s.password)
        return grant or (self.flavor != "legacy" and bool(s.api_token) and not looks_like_jwt(s.api_token or ""))

    def is_current(self, token: str) -> bool:
        """Whether `token` is the bot's own, as last handed out (a 401 on it may be renewed)."""
        return self._token is not None and token == self._token

    def get(self) -> str:
        with self._lock:
            if self._token is not None and not self._expiring():
                return self._token
            return self._renew()

    def renew_after_refusal(self, refused: str) -> str:
        """A fresh token after `refused` got a 401; raises AuthError when none can be had."""
        with self._lock:
            if self._token is not None and self._token != refused:
                return self._token  # another thread renewed it already
            if not self.renewable:
                raise AuthError("the API token was refused (HTTP 401) and cannot be renewed: "
                                "set a fresh PLANTBOT_API_TOKEN or the INAT_* password-grant variables")
            return self._renew()

    def _expiring(self) -> bool:
        return self._expires is not None and self.clock() >= self._expires - RENEW_MARGIN

    def _renew(self) -> str:
        s = self.secrets
        if not self.configured:
            raise AuthError("no credentials: set PLANTBOT_API_TOKEN, or INAT_APP_ID, INAT_APP_SECRET, "
                            "INAT_USERNAME and INAT_PASSWORD")
        if self.flavor == "legacy":
            token = s.api_token or self._password_grant()
            self._token, self._expires = token, None
            return token
        if s.api_token and looks_like_jwt(s.api_token):
            if self._token == s.api_token:
                log.warning("PLANTBOT_API_TOKEN (a JWT) is near its end and cannot be renewed here")
                return self._token
            self._token, self._expires = s.api_token, jwt_expiry(s.api_token)
            return s.api_token
        access = s.api_token or self._access or self._password_grant()
        try:
            jwt = self._exchange(access)
        except AuthError:
            if not (s.app_id and self._access):
                raise
            self._access = None  # the access token itself was revoked: log in again
            jwt = self._exchange(self._password_grant())
        self._token = jwt
        self._expires = jwt_expiry(jwt) or self.clock() + JWT_LIFETIME
        log.info("obtained a new API token (valid for %.1f h)", (self._expires - self.clock()) / 3600)
        return jwt

    def _password_grant(self) -> str:
        s = self.secrets
        if not (s.app_id and s.app_secret and s.username and s.password):
            raise AuthError("PLANTBOT_API_TOKEN is not set and the password grant needs INAT_APP_ID, "
                            "INAT_APP_SECRET, INAT_USERNAME and INAT_PASSWORD")
        if self.http.dry_run:
            raise AuthError("dry-run sends no POST, so it cannot log in with the password grant "
                            "(set PLANTBOT_API_TOKEN to read as the bot account)")
        doc = self.http.request("POST", f"{self.site_url}/oauth/token", data={
            "client_id": s.app_id, "client_secret": s.app_secret, "grant_type": "password",
            "username": s.username, "password": s.password})
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.site_url}/oauth/token gave no access token")
        self._access = token
        return token

    def _exchange(self, access_token: str) -> str:
        doc = self.http.request("GET", f"{self.site_url}/users/api_token", token=access_token)
        jwt = doc.get("api_token") if isinstance(doc, dict) else None
        if not isinstance(jwt, str) or not jwt:
            raise AuthError(f"{self.site_url}/users/api_token gave no api_token")
        return jwt
