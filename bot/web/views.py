"""The review queue, the per-proposal actions and the history page.

Approving posts at once, under the signed-in moderator's own token and login, through
`bot.post.post_decision` (the exactly-once ledger).  Skipped proposals leave the main queue and are
listed under the "Skipped" tab, where any moderator can still act on them later.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bot.domain import PROPOSAL_KINDS, DecisionStatus
from bot.errors import PlantBotError
from bot.post import post_decision
from bot.store.review import (
    ACTIONABLE,
    ActionConflict,
    Card,
    QueueFilter,
    get_card,
    list_queue,
    queue_counts,
    recent_actions,
    record_action,
    requeue,
)
from bot.store.values import DecisionValue
from bot.texts import render_text
from bot.web.context import web_context
from bot.web.security import Moderator, safe_next

log = logging.getLogger(__name__)
bp = Blueprint("review", __name__)
MAX_TEXT = 5000
MAX_REASON = 1000
MAX_PAGE = 10**6  # a page number beyond this is clamped (SQLite offsets are 64-bit)


def moderator() -> Moderator:
    """The signed-in moderator (the app's before_request guarantees one on these routes)."""
    mod = g.get("moderator")
    if not isinstance(mod, Moderator):
        abort(403)
    return mod


def _filter_from_args(args: Any) -> QueueFilter:
    kind = args.get("kind") or None
    if kind not in (None, *PROPOSAL_KINDS):
        kind = None
    try:
        min_score = float(args["min_score"]) if args.get("min_score") else None
    except ValueError:
        min_score = None
    try:
        page = min(MAX_PAGE, max(1, int(str(args.get("page", 1))[:12])))
    except ValueError:
        page = 1
    status = DecisionStatus.SKIPPED if args.get("status") == DecisionStatus.SKIPPED else DecisionStatus.PROPOSED
    return QueueFilter(status=status, kind=kind, min_score=min_score, page=page,
                       page_size=max(1, web_context().cfg.review.page_size))


def _query(flt: QueueFilter, page: int | None = None) -> str:
    params: dict[str, Any] = {}
    if flt.status != DecisionStatus.PROPOSED:
        params["status"] = flt.status
    if flt.kind:
        params["kind"] = flt.kind
    if flt.min_score is not None:
        params["min_score"] = f"{flt.min_score:g}"
    if (page or flt.page) > 1:
        params["page"] = page or flt.page
    return urlencode(params)


@bp.get("/")
def queue() -> str:
    ctx = web_context()
    mod = moderator()
    flt = _filter_from_args(request.args)
    with ctx.store.session() as s:
        page = list_queue(s, flt)
        for card in page.cards:
            card.photo_urls = ctx.photo_urls(card.photo_urls)
        counts = queue_counts(s)
        texts = {c.decision.id: _render(c.decision, mod.login) for c in page.cards}
        names = {c.decision.id: _known_names(c) for c in page.cards}
    here = url_for("review.queue") + (f"?{q}" if (q := _query(flt)) else "")
    return render_template("queue.html", page=page, flt=flt, counts=counts, texts=texts, names=names,
                           here=here, query=_query, kinds=PROPOSAL_KINDS)


def _render(decision: DecisionValue, login: str) -> str:
    return render_text(decision, web_context().cfg, reviewed_by=login)


def _known_names(card: Card) -> dict[int, str]:
    """Taxon names we already hold locally (to label the observer's and the community taxon)."""
    names: dict[int, str] = {}
    for p in [*card.top_species, *card.genus, *card.family]:
        if p.taxon_id is not None:
            names[p.taxon_id] = p.name
    if card.decision.taxon_id is not None and card.decision.taxon_name:
        names[card.decision.taxon_id] = card.decision.taxon_name
    if card.observation.taxon_id is not None and card.observation.taxon_name:
        names[card.observation.taxon_id] = card.observation.taxon_name
    return names


@bp.post("/proposals/<int:decision_id>/approve")
def approve(decision_id: int) -> Response:
    return _approve(decision_id, "approve")


@bp.post("/proposals/<int:decision_id>/edit")
def edit(decision_id: int) -> Response:
    """Edit the taxon (species IDs only) and/or the text, then approve and post."""
    ctx = web_context()
    mod = moderator()
    with ctx.store.session() as s:
        card = get_card(s, decision_id)
        if card is None:
            abort(404)
        original_text = _render(card.decision, mod.login)
        kind, current_taxon = card.decision.kind, card.decision.taxon_id
    text = request.form.get("text", "").replace("\r\n", "\n").strip()
    if not text:
        return _back_with("The text cannot be empty.", "error")
    if len(text) > MAX_TEXT:
        return _back_with(f"The text is longer than {MAX_TEXT} characters.", "error")
    taxon_id: int | None = None
    raw_taxon = request.form.get("taxon_id", "").strip()
    if kind == "species" and raw_taxon:
        if not raw_taxon.isdigit():
            return _back_with(f"Taxon id {raw_taxon!r} is not a number.", "error")
        if int(raw_taxon) != current_taxon:
            taxon_id = int(raw_taxon)
            problem = _check_taxon(taxon_id)
            if problem:
                return _back_with(problem, "error")
    edited_text = text if text != original_text.strip() else None
    if taxon_id is None and edited_text is None:
        return _approve(decision_id, "approve")
    return _approve(decision_id, "edit", text=edited_text, taxon_id=taxon_id)


def _check_taxon(taxon_id: int) -> str | None:
    """An edited taxon must exist on the platform; a typo must not become an identification."""
    try:
        taxon = web_context().platform().get_taxon(taxon_id)
    except PlantBotError as exc:
        return f"Could not check taxon {taxon_id} on the platform: {exc}"
    return None if taxon is not None else f"Taxon {taxon_id} does not exist on the platform."


def _approve(decision_id: int, action: str, *, text: str | None = None, taxon_id: int | None = None) -> Response:
    ctx = web_context()
    mod = moderator()
    try:
        with ctx.store.session() as s:
            record_action(s, decision_id, action, mod.login, edited_taxon_id=taxon_id, edited_text=text)
    except ActionConflict as exc:
        return _back_with(f"Not done: {exc}.", "error")
    log.info("proposal %d %s by %s", decision_id, "edited and approved" if action == "edit" else "approved",
             mod.login)
    try:
        with ctx.post_lock:
            outcome = post_decision(ctx.store, ctx.platform(), decision_id, token=mod.token, user_login=mod.login,
                                    mode=ctx.mode.for_moderator, cfg=ctx.cfg, text=text, taxon_id=taxon_id)
    except PlantBotError as exc:
        log.warning("posting proposal %d failed: %s", decision_id, exc)
        _requeue(decision_id)
        return _back_with(f"Proposal {decision_id}: posting failed ({exc}); it is back in the queue.", "error")
    if outcome.status == "posted":
        return _back_with(f"Proposal {decision_id} approved and posted (remote id {outcome.remote_id}).", "ok")
    if outcome.status == "already_posted":
        return _back_with(f"Proposal {decision_id} was already posted (remote id {outcome.remote_id}).", "info")
    if outcome.status == "retry":
        _requeue(decision_id)
        return _back_with(f"Proposal {decision_id}: the platform did not take it yet ({outcome.error}); "
                          "it is back in the queue, approve it again later.", "error")
    if outcome.status == "skipped":
        why = outcome.error or ("dry run" if ctx.dry_run else "not posted")
        return _back_with(f"Proposal {decision_id} approved; nothing was posted ({why}).", "info")
    return _back_with(f"Proposal {decision_id} approved, but posting {outcome.status}: {outcome.error}", "error")


def _requeue(decision_id: int) -> None:
    with web_context().store.session() as s:
        requeue(s, decision_id)


@bp.post("/proposals/<int:decision_id>/reject")
def reject(decision_id: int) -> Response:
    reason = request.form.get("reason", "").strip()[:MAX_REASON] or None
    return _simple(decision_id, "reject", reason=reason)


@bp.post("/proposals/<int:decision_id>/skip")
def skip(decision_id: int) -> Response:
    return _simple(decision_id, "skip", allowed_from=(DecisionStatus.PROPOSED,))


def _simple(decision_id: int, action: str, *, reason: str | None = None,
            allowed_from: tuple[str, ...] = ACTIONABLE) -> Response:
    ctx = web_context()
    mod = moderator()
    try:
        with ctx.store.session() as s:
            record_action(s, decision_id, action, mod.login, reason=reason, allowed_from=allowed_from)
    except ActionConflict as exc:
        return _back_with(f"Not done: {exc}.", "error")
    log.info("proposal %d: %s by %s", decision_id, action, mod.login)
    done = {"reject": "rejected", "skip": "skipped (see the Skipped tab)"}[action]
    return _back_with(f"Proposal {decision_id} {done}.", "ok")


def _back_with(message: str, category: str) -> Response:
    flash(message, category)
    return redirect(safe_next(request.form.get("back"), url_for("review.queue")))


@bp.get("/history")
def history() -> str:
    ctx = web_context()
    with ctx.store.session() as s:
        entries = recent_actions(s, limit=100)
    return render_template("history.html", entries=entries)
