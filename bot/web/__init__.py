"""The moderators' review UI: a small server-rendered Flask app (`plantbot serve`).

Every POST needs a signed-in moderator (403 otherwise) and the session's CSRF token (400
otherwise); every page but the sign-in pages needs a signed-in moderator (redirect otherwise).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, render_template, request, session, url_for
from flask_babel import Babel, get_locale, gettext
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from bot.config import Config, Secrets
from bot.domain import RunMode
from bot.platforms.base import Platform
from bot.store.db import Store
from bot.store.review import sized_photo_url
from bot.urls import csp_sources
from bot.web import actions, auth, views  # noqa: F401  (actions and views add their routes to `bp`)
from bot.web import withdraw as _withdraw  # noqa: F401  (adds its routes to the review blueprint)
from bot.web.blueprint import bp as review_bp
from bot.web.context import EXTENSION, WebContext, web_context
from bot.web.labels import TEMPLATE_GLOBALS, http_error_words
from bot.web.security import CSRF_FIELD, SESSION_ID, TokenVault, check_csrf, csrf_token

SESSION_HOURS = 12
LANGUAGES = ("en", "es")


def tile_source(tiles_url: str) -> list[str]:
    """The map's tile host as a CSP source (empty when no tiles are configured)."""
    tiles = urlsplit(tiles_url.replace("{s}", "a"))
    return [f"{tiles.scheme}://{tiles.netloc}"] if tiles.scheme and tiles.netloc else []


def content_security_policy(img_sources: list[str]) -> str:
    """The review UI's CSP; `img-src` names exactly the given sources (the allowed photo hosts and the map's
    tile host) besides this app's own map markers, so a photo URL the downloader refused can never be loaded
    by a moderator's browser either.  Scripts, styles and requests only from this app."""
    img = " ".join(["'self'", *img_sources])
    return (f"default-src 'self'; img-src {img}; style-src 'self'; script-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _locale() -> str:
    """The browser's preference when it names a language we have, else `[posting] language`."""
    best = request.accept_languages.best_match(LANGUAGES) if request.accept_languages else None
    return best or web_context().cfg.posting.language


def _default_platform_factory(cfg: Config, mode: RunMode) -> Callable[[], Platform]:
    def factory() -> Platform:
        from bot.platforms import create_platform  # built lazily: the UI starts even if the API is down

        platform: Platform = create_platform(cfg, Secrets.from_env(), dry_run=mode.dry_run)
        return platform

    return factory


def create_app(cfg: Config, store: Store, *, platform_factory: Callable[[], Platform] | None = None,
               secret_key: str | None = None, mode: RunMode | None = None) -> Flask:
    """The review app.  Without `secret_key`, PLANTBOT_SECRET_KEY is used, else a random per-process
    key (sessions then end when the process restarts, which the in-memory token vault does anyway).
    `mode` defaults to the configured `[posting] mode`."""
    mode = mode or RunMode.of(cfg.posting.mode)
    secrets_env = Secrets.from_env()
    behind_https = cfg.review.redirect_url.lower().startswith("https://")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets_env.web_secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="plantbot_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind an HTTPS reverse proxy (an https redirect URL) the cookie never travels in clear text.
        SESSION_COOKIE_SECURE=behind_https,
        PREFERRED_URL_SCHEME="https" if behind_https else "http",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions[EXTENSION] = WebContext(
        cfg=cfg,
        store=store,
        mode=mode,
        platform_factory=platform_factory or _default_platform_factory(cfg, mode),
        client_secret=secrets_env.oauth_client_secret,
        vault=TokenVault(ttl_s=SESSION_HOURS * 3600),
        img_sources=csp_sources(cfg.allowed_photo_hosts) + tile_source(cfg.review.map_tiles_url),
    )
    Babel(app, locale_selector=_locale)
    app.register_blueprint(auth.bp)
    app.register_blueprint(review_bp)
    app.before_request(_guard)
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _error_page)
    app.context_processor(_template_globals)
    app.add_template_filter(sized_photo_url, "photo_size")
    return app


def _guard() -> Response | None:
    ctx = web_context()
    g.moderator = ctx.vault.get(session.get(SESSION_ID))
    if request.method == "POST":
        if g.moderator is None and request.endpoint != "auth.logout":
            abort(403, description=gettext("You are not signed in (or your session expired). Sign in and try "
                                           "again."))
        check_csrf()
        return None
    if request.blueprint == "review" and g.moderator is None:
        return redirect(url_for("auth.signin", next=request.full_path.rstrip("?")))
    return None


def _headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", content_security_policy(web_context().img_sources))
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")  # the callback URL carries the OAuth code
    if request.endpoint != "static":
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _error_page(exc: HTTPException) -> tuple[str, int]:
    """The error in the page's language: our own descriptions are translated where they are raised,
    Werkzeug's stock ones here."""
    name, stock = http_error_words(exc.code or 500)
    description = stock if exc.description == type(exc).description else exc.description
    return render_template("error.html", code=exc.code, name=name or exc.name,
                           description=description or exc.description), exc.code or 500


def _template_globals() -> dict[str, Any]:
    ctx = web_context()
    return {
        "csrf_token": csrf_token,
        "csrf_field": CSRF_FIELD,
        "moderator": g.get("moderator"),
        "dry_run": ctx.dry_run,
        "posting_mode": ctx.cfg.posting.mode,
        "site_url": ctx.site_url,
        "platform_link": ctx.platform_link,
        "locale": str(get_locale() or ctx.cfg.posting.language),
        "map_tiles_url": ctx.cfg.review.map_tiles_url,
        "map_attribution": ctx.cfg.review.map_attribution,
        "js_strings": _js_strings(),
        **TEMPLATE_GLOBALS,
    }


def _js_strings() -> dict[str, str]:
    """What review.js says to people, translated here (the script itself holds no words)."""
    return {
        "posting": gettext("posting…"), "working": gettext("saving…"), "posted": gettext("posted"),
        "view": gettext("view it on the platform"), "rejected": gettext("rejected"), "skipped": gettext("skipped"),
        "failed": gettext("not done"), "network": gettext("The review server could not be reached; nothing was "
                                                          "done. Try again."),
        "searching": gettext("searching…"), "nomatch": gettext("No taxon matches."),
        "photo": gettext("photo %(n)s of %(total)s"), "ident": gettext("an identification"),
        "comment": gettext("a comment"), "done": gettext("All proposals on this page are done."),
        "zoomin": gettext("Zoom the map in"), "zoomout": gettext("Zoom the map out"),
    }


__all__ = ["create_app"]
