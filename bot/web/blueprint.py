"""The review blueprint shared by the page views (`views`) and the per-proposal actions (`actions`)."""

from __future__ import annotations

from flask import Blueprint, abort, g

from bot.web.security import Moderator

bp = Blueprint("review", __name__)


def moderator() -> Moderator:
    """The signed-in moderator (the app's before_request guarantees one on these routes)."""
    mod = g.get("moderator")
    if not isinstance(mod, Moderator):
        abort(403)
    return mod
