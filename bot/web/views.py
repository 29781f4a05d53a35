"""The review pages: the queue (filters, sort, paging), one proposal's permalink, and the history.

A card shows the observation's context as stored when it was read; cards whose context is older
than `[review] context_max_age_minutes` are re-read first, one batched request for the whole page.
Skipped proposals leave the main queue and are listed under the "Skipped" tab.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from flask import abort, render_template, request, url_for
from flask_babel import gettext as _

from bot.domain import PROPOSAL_KINDS, DecisionStatus
from bot.store.review import (
    SORTS,
    Card,
    QueueFilter,
    QueuePage,
    get_card,
    list_queue,
    queue_counts,
    recent_actions,
)
from bot.web.blueprint import bp, moderator
from bot.web.cards import CardView, build_view, refresh_context, stale_ids
from bot.web.context import web_context

log = logging.getLogger(__name__)
MAX_PAGE = 10**6  # a page number beyond this is clamped (SQLite offsets are 64-bit)
PHOTO_SIZE = "medium"  # the card; the lightbox asks for "large"
TEXT_FIELDS = ("taxon", "observer", "place")
MAX_EXCLUDE = 500


def _text(args: Any, name: str) -> str | None:
    value = (args.get(name) or "").strip()[:200]
    return value or None


def _date(args: Any, name: str) -> date | None:
    try:
        return date.fromisoformat(args[name]) if args.get(name) else None
    except ValueError:
        return None


def _percent(args: Any, name: str) -> float | None:
    """Probabilities are shown and typed in percent everywhere; stored as fractions."""
    try:
        value = float(args[name]) if args.get(name) else None
    except ValueError:
        return None
    return None if value is None else min(100.0, max(0.0, value)) / 100.0


def filter_from_args(args: Any) -> QueueFilter:
    kind = args.get("kind") or None
    try:
        page = min(MAX_PAGE, max(1, int(str(args.get("page", 1))[:12])))
    except ValueError:
        page = 1
    sort = args.get("sort") if args.get("sort") in SORTS else "oldest"
    skipped = args.get("status") == DecisionStatus.SKIPPED
    return QueueFilter(status=DecisionStatus.SKIPPED if skipped else DecisionStatus.PROPOSED,
                       kind=kind if kind in PROPOSAL_KINDS else None, min_score=_percent(args, "min_prob"),
                       taxon=_text(args, "taxon"), observer=_text(args, "observer"), place=_text(args, "place"),
                       observed_from=_date(args, "from"), observed_to=_date(args, "to"), sort=sort, page=page,
                       page_size=max(1, web_context().cfg.review.page_size))


def query_string(flt: QueueFilter, page: int | None = None) -> str:
    """The filter as a query string (for paging links and the form's `back`)."""
    params: dict[str, Any] = {}
    if flt.status != DecisionStatus.PROPOSED:
        params["status"] = flt.status
    if flt.kind:
        params["kind"] = flt.kind
    if flt.min_score is not None:
        params["min_prob"] = f"{flt.min_score * 100:g}"
    for name in TEXT_FIELDS:
        if getattr(flt, name):
            params[name] = getattr(flt, name)
    if flt.observed_from:
        params["from"] = flt.observed_from.isoformat()
    if flt.observed_to:
        params["to"] = flt.observed_to.isoformat()
    if flt.sort != "oldest":
        params["sort"] = flt.sort
    if (page or flt.page) > 1:
        params["page"] = page or flt.page
    return urlencode(params)


def _views(cards: list[Card]) -> list[CardView]:
    ctx = web_context()
    mod = moderator()
    platform = ctx.platform_or_none()
    for card in cards:  # only photos on the allowed hosts ever reach a page
        card.photo_urls = ctx.photo_urls(card.photo_urls)
    return [build_view(c, ctx.cfg, mod.login, ctx.lineages, platform) for c in cards]


def _load_page(flt: QueueFilter) -> tuple[QueuePage, list[CardView], str | None]:
    """The page's cards, re-reading stale contexts first (then loading the page again)."""
    ctx = web_context()
    with ctx.store.session() as s:
        page = list_queue(s, flt, PHOTO_SIZE)
        stale = stale_ids(page.cards, ctx.cfg.review.context_max_age_minutes)
    problem = None
    if stale:
        platform = ctx.platform_or_none()
        problem = refresh_context(ctx.store, platform, stale) if platform else None
    with ctx.store.session() as s:
        if stale and problem is None:
            page = list_queue(s, flt, PHOTO_SIZE)
        return page, _views(page.cards), problem


@bp.get("/")
def queue() -> str:
    ctx = web_context()
    flt = filter_from_args(request.args)
    page, views, problem = _load_page(flt)
    with ctx.store.session() as s:
        counts = queue_counts(s)
    here = url_for("review.queue") + (f"?{q}" if (q := query_string(flt)) else "")
    return render_template("queue.html", page=page, views=views, flt=flt, counts=counts, here=here,
                           query=query_string, kinds=PROPOSAL_KINDS, sorts=SORTS, context_problem=problem)


@bp.get("/cards")
def more_cards() -> str:
    """The next cards of the queue as an HTML fragment (the page fetches it before it runs out),
    leaving out those the page already holds."""
    flt = filter_from_args(request.args)
    held = [int(x) for x in (request.args.get("exclude") or "").split(",")[:MAX_EXCLUDE] if x.isdigit()]
    flt = replace(flt, exclude=tuple(held), page=1)
    _, views, _ = _load_page(flt)
    here = url_for("review.queue") + (f"?{q}" if (q := query_string(flt)) else "")
    return render_template("_cards.html", views=views, here=here)


def _card_or_404(decision_id: int) -> Card:
    with web_context().store.session() as s:
        card = get_card(s, decision_id, PHOTO_SIZE)
    if card is None:
        abort(404, description=_("There is no proposal %(id)d.", id=decision_id))
    return card


@bp.get("/proposals/<int:decision_id>")
def proposal(decision_id: int) -> str:
    """One proposal's permalink: the same card, whatever its status."""
    ctx = web_context()
    card = _card_or_404(decision_id)
    stale = stale_ids([card], ctx.cfg.review.context_max_age_minutes)
    problem = None
    platform = ctx.platform_or_none()
    if stale and platform is not None:
        problem = refresh_context(ctx.store, platform, stale)
        card = _card_or_404(decision_id)  # with the context just re-read
    views = _views([card])
    here = url_for("review.proposal", decision_id=decision_id)
    return render_template("proposal.html", views=views, here=here, context_problem=problem)


@bp.get("/history")
def history() -> str:
    ctx = web_context()
    with ctx.store.session() as s:
        entries = recent_actions(s, limit=100)
    return render_template("history.html", entries=entries)
