"""Moderator sign-in: OAuth authorization-code flow with PKCE against the platform's site.

The browser is sent to the site's `/oauth/authorize`; the code that comes back is exchanged for an API
token by the Platform adapter (`platforms.auth.exchange_code`, through the shared HTTP session), which
then says who the token belongs to.  Only logins in `[review] moderators` are let in.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from bot.errors import AuthError, PlantBotError
from bot.store.review import bind_moderator
from bot.web.context import web_context
from bot.web.security import SESSION_ID, Moderator, PendingSignIn, safe_next

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
PENDING = "oauth_pending"


def pkce_pair() -> tuple[str, str]:
    """A code verifier (43-128 chars) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _redirect_uri() -> str:
    configured = web_context().cfg.review.redirect_url
    return configured or url_for("auth.callback", _external=True)


@bp.get("/signin")
def signin() -> str:
    """A landing page with the sign-in button (no automatic redirect, so sign-out sticks)."""
    return render_template("signin.html", next=safe_next(request.args.get("next")))


@bp.get("/login")
def login() -> Response:
    ctx = web_context()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    ctx.pending.put(state, PendingSignIn(verifier=verifier, next=safe_next(request.args.get("next"))))
    session[PENDING] = state  # the verifier stays on the server
    params = {
        "client_id": ctx.cfg.review.oauth_client_id,
        "redirect_uri": _redirect_uri(),
        "response_type": "code",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return redirect(f"{ctx.site_url}/oauth/authorize?{urlencode(params)}")


@bp.get("/auth/callback")
def callback() -> Response | tuple[str, int]:
    state = session.pop(PENDING, None)
    ctx = web_context()
    if request.args.get("error"):
        return _failed(_("The sign-in was not completed (%(error)s).", error=request.args.get("error", "")[:100]),
                       400)
    pending = ctx.pending.pop(state) if isinstance(state, str) and secrets.compare_digest(
        state, request.args.get("state", "")) else None
    if pending is None:
        return _failed(_("This sign-in link is stale or was not started here. Please sign in again."), 400)
    code = request.args.get("code", "")
    if not code:
        return _failed(_("The platform did not return an authorization code."), 400)
    try:
        platform = ctx.platform()
        token = platform.exchange_code(code, pending.verifier, client_id=ctx.cfg.review.oauth_client_id,
                                       client_secret=ctx.client_secret, redirect_uri=_redirect_uri())
        user = platform.get_current_user(token)
    except AuthError as exc:
        log.warning("moderator sign-in refused by the platform: %s", exc)
        return _failed(_("The platform refused the sign-in: %(error)s", error=str(exc)), 403)
    except PlantBotError as exc:
        log.warning("moderator sign-in failed: %s", type(exc).__name__)
        return _failed(_("The platform could not be reached to finish the sign-in. Try again later."), 502)
    if user.login not in ctx.cfg.review.moderators:  # exact: no case folding (K and KELVIN SIGN differ)
        log.warning("sign-in refused for %r: not in [review] moderators", user.login)
        return render_template("refused.html", login=user.login), 403
    with ctx.store.session() as s:
        known_id = bind_moderator(s, user.login, user.id)
    if known_id != user.id:  # the login was renamed and taken by another account
        log.warning("sign-in refused for %r: it now belongs to user id %s, but the moderator's recorded "
                    "user id is %s", user.login, user.id, known_id)
        return render_template("refused.html", login=user.login), 403
    session.clear()
    session.permanent = True
    session[SESSION_ID] = ctx.vault.put(Moderator(login=user.login, user_id=user.id, token=token))
    log.info("moderator %s (user id %s) signed in", user.login, user.id)
    return redirect(safe_next(pending.next, url_for("review.queue")))


@bp.post("/logout")
def logout() -> Response:
    web_context().vault.drop(session.get(SESSION_ID))
    session.clear()
    return redirect(url_for("auth.signin"))


def _failed(message: str, status: int) -> tuple[str, int]:
    return render_template("signin.html", error=message, next="/"), status
