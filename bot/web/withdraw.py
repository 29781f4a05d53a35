"""The Withdraw page: a moderator withdraws their own posted identifications.

In review mode every identification was posted under the approving moderator's account, so only
that moderator can withdraw it (`plantbot retract` with the bot's token cannot).  The page lists the
signed-in moderator's own posted identifications (those of retracted model versions first) and,
per moderator, what retracted versions left standing.  Withdrawing goes through
`bot.report.retract.withdraw_post`, the same exactly-once ledger as `plantbot retract`, and is
recorded in the history (a "withdraw" review action) and the audit report (the post's state).
The routes live on the review blueprint, so its sign-in guard covers them.
"""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from bot.domain import WithdrawalStatus
from bot.errors import PlantBotError
from bot.report.retract import withdraw_post
from bot.store.withdrawals import get_standing_post, left_standing, own_posted_identifications, retracted_versions
from bot.web.context import web_context
from bot.web.views import bp, moderator

log = logging.getLogger(__name__)


@bp.get("/withdrawals")
def withdrawals() -> str:
    ctx = web_context()
    mod = moderator()
    with ctx.store.session() as s:
        own = own_posted_identifications(s, mod.login)
        standing = left_standing(s)
        versions = retracted_versions(s)
    return render_template("withdrawals.html", own=own, standing=standing, versions=versions)


def _done(message: str, category: str) -> Response:
    flash(message, category)
    return redirect(url_for("review.withdrawals"))


def _still_own(post_id: int, login: str) -> bool:
    """Whether the post is still one of `login`'s current identifications (read again under the lock)."""
    with web_context().store.session() as s:
        return get_standing_post(s, post_id) is not None and post_id in {
            p.post_id for p in own_posted_identifications(s, login)}


@bp.post("/withdrawals/<int:post_id>")
def withdraw(post_id: int) -> Response:
    ctx = web_context()
    login = moderator().login
    with ctx.store.session() as s:
        post = get_standing_post(s, post_id)
    if post is None:
        return _done(_("Post %(id)d is not a posted identification.", id=post_id), "error")
    remote = post.remote_id
    if post.user_login != login:
        return _done(_("Identification %(id)s was posted by %(login)s; only they can withdraw it.", id=remote,
                       login=post.user_login), "error")
    if ctx.dry_run:
        return _done(_("Dry run: identification %(id)s was not withdrawn.", id=remote), "info")
    try:
        with ctx.post_lock:  # one withdrawal at a time, like posting: a double click sends once
            if not _still_own(post_id, login):
                return _done(_("Identification %(id)s was already withdrawn.", id=remote), "info")
            status = withdraw_post(ctx.store, ctx.platform(), post_id=post_id, token=moderator().token,
                                   user_login=login)
    except PlantBotError as exc:
        log.warning("withdrawing post %d failed: %s", post_id, exc)
        return _done(_("Withdrawing identification %(id)s failed: %(error)s", id=remote, error=str(exc)), "error")
    if status != WithdrawalStatus.WITHDRAWN:
        return _done(_("Withdrawing identification %(id)s failed; try again later.", id=remote), "error")
    log.info("identification %d withdrawn by %s", remote, login)
    return _done(_("Identification %(id)s on observation %(obs)s withdrawn.", id=remote, obs=post.observation_id),
                 "ok")
