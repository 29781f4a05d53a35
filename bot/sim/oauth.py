"""The simulator's sign-in: OAuth access tokens, authorization codes with PKCE, and HS256 JWTs.

It mirrors what iNaturalist's Rails site does (Doorkeeper OAuth, `/users/api_token` handing out a
24 h JWT) closely enough that PlantBot's real client code and the review UI's sign-in run unchanged.
"""

from __future__ import annotations

import hmac
import html
import urllib.parse

from bot.sim.model import SimUser
from bot.sim.routing import (
    Call,
    Reply,
    Route,
    SimHost,
    error_reply,
    html_reply,
    json_reply,
    redirect_reply,
    route,
)
from bot.sim.tokens import AuthCode, TokenAuthority, b64url, b64url_decode, pkce_challenge

__all__ = ["AuthCode", "TokenAuthority", "b64url", "b64url_decode", "pkce_challenge"]


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


# --- routes on the site root: /oauth/token, /oauth/authorize, /users/api_token -------------------

def _find_user(srv: SimHost, login: str, password: str) -> SimUser | None:
    for user in srv.world.users.values():
        same_password = hmac.compare_digest(user.password.encode(), password.encode())
        if user.login.lower() == login.strip().lower() and same_password:
            return user
    return None


def _client_ok(srv: SimHost, client_id: str, secret: str | None) -> bool:
    """Known client (any non-empty id when the server lists none); a secret, if sent, must match."""
    if not client_id:
        return False
    if srv.oauth_clients is None:
        return True
    expected = srv.oauth_clients.get(client_id)
    return expected is not None and (secret is None or hmac.compare_digest(expected, secret))


def _fields(call: Call) -> dict[str, str]:
    return {k: str(v) for k, v in call.body_fields().items() if not isinstance(v, dict | list)}


def token(srv: SimHost, call: Call) -> Reply:
    """POST /oauth/token: password grant or authorization-code grant (PKCE checked)."""
    fields = _fields(call)
    grant = fields.get("grant_type", "")
    client_id = fields.get("client_id", "")
    if grant == "password":
        if not fields.get("client_secret") or not _client_ok(srv, client_id, fields.get("client_secret")):
            return error_reply(401, "invalid_client", CLIENT_FAILED)
        with srv.lock:
            user = _find_user(srv, fields.get("username", ""), fields.get("password", ""))
        if user is None:
            return error_reply(401, "invalid_grant", GRANT_FAILED)
        user_id = user.id
    elif grant == "authorization_code":
        if not _client_ok(srv, client_id, fields.get("client_secret")):
            return error_reply(401, "invalid_client", CLIENT_FAILED)
        found = srv.tokens.redeem_code(fields.get("code", ""), client_id, fields.get("redirect_uri", ""),
                                       fields.get("code_verifier", ""))
        if found is None:
            return error_reply(401, "invalid_grant", GRANT_FAILED)
        user_id = found
    else:
        return error_reply(400, "unsupported_grant_type", "grant_type must be password or authorization_code")
    return json_reply({"access_token": srv.tokens.access_token(user_id), "token_type": "Bearer",
                       "scope": "login write", "created_at": int(srv.clock())})


def _authorize_params(values: dict[str, str]) -> tuple[dict[str, str], str]:
    params = {name: values.get(name, "") for name in SIGN_IN_FIELDS}
    if params["response_type"] != "code":
        return params, "response_type must be code"
    if not params["client_id"] or not params["redirect_uri"]:
        return params, "client_id and redirect_uri are required"
    if params["code_challenge"] and params["code_challenge_method"] not in ("S256", "plain", ""):
        return params, "code_challenge_method must be S256"
    return params, ""


def authorize_form(srv: SimHost, call: Call) -> Reply:
    """GET /oauth/authorize: the sign-in form (the user is never 'already signed in' here)."""
    params, problem = _authorize_params({k: v[0] for k, v in call.req.query.items() if v})
    if problem or not _client_ok(srv, params["client_id"], None):
        return html_reply(error_page(problem or "unknown client_id"), 400)
    return html_reply(sign_in_page(params))


def authorize_submit(srv: SimHost, call: Call) -> Reply:
    """POST /oauth/authorize: right password -> 302 to redirect_uri with code and state."""
    fields = _fields(call)
    params, problem = _authorize_params(fields)
    if problem or not _client_ok(srv, params["client_id"], None):
        return html_reply(error_page(problem or "unknown client_id"), 400)
    with srv.lock:
        user = _find_user(srv, fields.get("login", ""), fields.get("password", ""))
    if user is None:
        return html_reply(sign_in_page(params, "Invalid login or password."), 200)
    code = srv.tokens.new_code(user.id, params["client_id"], params["redirect_uri"], params["code_challenge"],
                               params["code_challenge_method"] or "S256")
    extra = {"code": code, **({"state": params["state"]} if params["state"] else {})}
    parts = urllib.parse.urlsplit(params["redirect_uri"])
    query = "&".join(p for p in (parts.query, urllib.parse.urlencode(extra)) if p)
    return redirect_reply(urllib.parse.urlunsplit(parts._replace(query=query)))


def api_token(srv: SimHost, call: Call) -> Reply:
    """GET /users/api_token: the OAuth access token (Bearer) buys a JWT."""
    user_id = srv.tokens.check_access_token(call.bearer())
    if user_id is None or user_id not in srv.world.users:
        return error_reply(401, "invalid_token", "The access token is invalid")
    return json_reply({"api_token": srv.tokens.jwt(user_id, srv.world.users[user_id].login)})


CLIENT_FAILED = ("Client authentication failed due to unknown client, no client authentication included, "
                 "or unsupported authentication method.")
GRANT_FAILED = ("The provided authorization grant is invalid, expired, revoked, does not match the redirection "
                "URI used in the authorization request, or was issued to another client.")

ROUTES: list[Route] = [
    route("POST", r"/oauth/token", token),
    route("GET", r"/oauth/authorize", authorize_form),
    route("POST", r"/oauth/authorize", authorize_submit),
    route("GET", r"/users/api_token(?:\.json)?", api_token),
]
