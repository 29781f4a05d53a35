"""What a moderator does to a proposal: approve, edit then approve, reject, skip; plus the live
preview of the text to be posted and the taxon search behind the edit box.

Approving posts at once, under the signed-in moderator's own token and login, through
`bot.post.post_decision` (the exactly-once ledger).  The page sends actions in the background
(`X-Requested-With: fetch`) and gets JSON back; without JavaScript the forms still work and the
answer is a redirect with a message.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from bot.domain import DecisionStatus, PostResult
from bot.errors import PlantBotError
from bot.post import post_decision
from bot.store.posting import get_decision
from bot.store.review import ACTIONABLE, ActionConflict, get_card, record_action, requeue
from bot.store.values import DecisionValue
from bot.texts import render_body, render_text
from bot.web.blueprint import bp, moderator
from bot.web.context import web_context
from bot.web.labels import status_label
from bot.web.security import safe_next

log = logging.getLogger(__name__)
MAX_TEXT = 5000
MAX_REASON = 1000
SEARCH_LIMIT = 10


def wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _answer(decision_id: int, ok: bool, message: str, *, state: str, link: str | None = None,
            code: int = 200) -> Response:
    """JSON for the page's background requests, else a message and a redirect back."""
    if wants_json():
        resp = jsonify({"id": decision_id, "ok": ok, "state": state, "message": message, "link": link})
        resp.status_code = code
        return resp
    flash(message, "ok" if ok and state != "info" else ("info" if ok else "error"))
    return redirect(safe_next(request.form.get("back"), url_for("review.queue")))


@bp.post("/proposals/<int:decision_id>/approve")
def approve(decision_id: int) -> Response:
    return _approve(decision_id, "approve")


def _taxon_name(taxon_id: int, decision_id: int) -> tuple[str | None, str | None]:
    """(name, problem): names the model already knows first, else the platform's answer."""
    ctx = web_context()
    with ctx.store.session() as s:
        card = get_card(s, decision_id)
        preds = [*card.top_species, *card.genus, *card.family] if card else []
        known = {p.taxon_id: p.name for p in preds if p.taxon_id}
        if card and card.decision.taxon_id and card.decision.taxon_name:
            known.setdefault(card.decision.taxon_id, card.decision.taxon_name)
    if taxon_id in known:
        return known[taxon_id], None
    try:
        taxon = ctx.platform().get_taxon(taxon_id)
    except PlantBotError as exc:
        return None, _("Could not check taxon %(id)s on the platform: %(error)s", id=taxon_id, error=str(exc))
    if taxon is None:
        return None, _("Taxon %(id)s does not exist on the platform.", id=taxon_id)
    return taxon.name, None


def _form_taxon(decision: DecisionValue) -> tuple[int | None, str | None]:
    """The taxon the moderator chose, when it differs from the proposal's (an identification of it)."""
    raw = request.form.get("taxon_id", "").strip()
    if not raw:
        return None, None
    if not raw.isdigit():
        return None, _("Taxon id %(raw)s is not a number.", raw=repr(raw[:20]))
    taxon_id = int(raw)
    return (None, None) if taxon_id == decision.taxon_id else (taxon_id, None)


def _chosen_taxon(decision: DecisionValue) -> tuple[int | None, str | None, str | None]:
    """(taxon id, its name, problem): the taxon the form chose when it differs from the proposal's."""
    taxon_id, problem = _form_taxon(decision)
    if taxon_id is None or problem:
        return None, None, problem
    name, problem = _taxon_name(taxon_id, decision.id)
    return taxon_id, name, problem


def _decision_or_404(decision_id: int) -> DecisionValue:
    """The proposal a form acts on, read in a session of its own (the value outlives it)."""
    with web_context().store.session() as s:
        card = get_card(s, decision_id)
    if card is None:
        abort(404)
    return card.decision


@bp.post("/proposals/<int:decision_id>/edit")
def edit(decision_id: int) -> Response:
    """Approve what the moderator sees: their taxon (any rank) and their text, exactly as shown."""
    ctx = web_context()
    mod = moderator()
    decision = _decision_or_404(decision_id)
    original_text = render_text(decision, ctx.cfg, reviewed_by=mod.login)
    text = request.form.get("text", "").replace("\r\n", "\n").strip()
    if not text:
        return _answer(decision_id, False, _("The text cannot be empty."), state="invalid", code=400)
    if len(text) > MAX_TEXT:
        return _answer(decision_id, False, _("The text is longer than %(n)d characters.", n=MAX_TEXT),
                       state="invalid", code=400)
    taxon_id, name, problem = _chosen_taxon(decision)
    if problem:
        return _answer(decision_id, False, problem, state="invalid", code=400)
    template_text = original_text.strip()
    if taxon_id is not None:  # the template's text for the new taxon: what the preview showed
        template_text = render_body(decision, ctx.cfg, mod.login, identification=True, taxon_name=name).strip()
        if text == original_text.strip():
            text = template_text
    edited_text = text if text != template_text else None
    if taxon_id is None and edited_text is None:
        return _approve(decision_id, "approve")
    return _approve(decision_id, "edit", text=edited_text, taxon_id=taxon_id, taxon_name=name, post_text=text)


@bp.post("/proposals/<int:decision_id>/preview")
def preview(decision_id: int) -> Response:
    """The text that would be posted with this taxon, rendered by the same template as the post."""
    ctx = web_context()
    mod = moderator()
    decision = _decision_or_404(decision_id)
    taxon_id, name, problem = _chosen_taxon(decision)
    if problem:
        resp = jsonify({"ok": False, "message": problem})
        resp.status_code = 400
        return resp
    identification = decision.kind == "species" or taxon_id is not None
    text = render_body(decision, ctx.cfg, mod.login, identification=identification, taxon_name=name)
    return jsonify({"ok": True, "text": text, "identification": identification,
                    "taxon_name": name or decision.taxon_name})


@bp.get("/taxa/search")
def search_taxa() -> Response:
    """The platform's taxon autocomplete (the legacy flavor's taxa search), for the edit box."""
    text = (request.args.get("q") or "").strip()[:100]
    if len(text) < 2:
        return jsonify({"ok": True, "results": []})
    try:
        taxa = web_context().platform().autocomplete_taxa(text, SEARCH_LIMIT)
    except PlantBotError as exc:
        resp = jsonify({"ok": False, "message": _("The taxon search failed: %(error)s", error=str(exc))})
        resp.status_code = 502
        return resp
    results = [{"id": t.id, "name": t.name, "rank": t.rank, "common_name": t.preferred_common_name} for t in taxa]
    return jsonify({"ok": True, "results": results})


def _posted_link(decision_id: int, remote_id: int | None, identification: bool) -> str | None:
    ctx = web_context()
    if not remote_id:
        return None
    if identification:
        return f"{ctx.site_url}/identifications/{remote_id}"
    with ctx.store.session() as s:
        card = get_card(s, decision_id)
        obs_url = (card.observation.uri if card else None) or f"{ctx.site_url}/observations/"
    return f"{obs_url}#activity_comment_{remote_id}"


def _approve(decision_id: int, action: str, *, text: str | None = None, taxon_id: int | None = None,
             taxon_name: str | None = None, post_text: str | None = None) -> Response:
    """Records the approval (`text`: the moderator's own words, if any) and posts `post_text`, exactly
    the text the card showed (None: the template's)."""
    ctx = web_context()
    mod = moderator()
    try:
        with ctx.store.session() as s:
            record_action(s, decision_id, action, mod.login, edited_taxon_id=taxon_id,
                          edited_taxon_name=taxon_name, edited_text=text)
            kind = get_decision(s, decision_id).kind  # type: ignore[union-attr]
    except ActionConflict as exc:
        log.info("proposal %d: %s", decision_id, exc)
        return _answer(decision_id, False, _conflict(decision_id), state="conflict", code=409)
    log.info("proposal %d %s by %s", decision_id, "edited and approved" if action == "edit" else "approved",
             mod.login)
    try:
        with ctx.post_lock:
            outcome = post_decision(ctx.store, ctx.platform(), decision_id, token=mod.token, user_login=mod.login,
                                    mode=ctx.mode.for_moderator, cfg=ctx.cfg, text=post_text or text, taxon_id=taxon_id)
    except PlantBotError as exc:
        log.warning("posting proposal %d failed: %s", decision_id, exc)
        _requeue(decision_id)
        return _answer(decision_id, False, _("Proposal %(id)d was not posted: %(error)s. It is back in the "
                                             "queue.", id=decision_id, error=str(exc)), state="error", code=502)
    return _outcome_answer(decision_id, outcome, kind == "species" or taxon_id is not None)


def _outcome_answer(decision_id: int, outcome: Any, identification: bool) -> Response:
    link = _posted_link(decision_id, outcome.remote_id, identification)
    if outcome.status == PostResult.POSTED:
        message = (_("Proposal %(id)d approved: the identification is posted.", id=decision_id) if identification
                   else _("Proposal %(id)d approved: the comment is posted.", id=decision_id))
        return _answer(decision_id, True, message, state="posted", link=link)
    if outcome.status == PostResult.ALREADY_POSTED:
        return _answer(decision_id, True, _("Proposal %(id)d was already posted.", id=decision_id),
                       state="posted", link=link)
    if outcome.status == PostResult.RETRY:
        _requeue(decision_id)
        return _answer(decision_id, False, _("Proposal %(id)d: the platform did not take it (%(error)s). Nothing "
                                             "was posted; it is back in the queue, approve it again later.",
                                             id=decision_id, error=outcome.error), state="error", code=502)
    if outcome.status == PostResult.SKIPPED:
        why = _("dry run") if web_context().dry_run else (outcome.error or _("not posted"))
        return _answer(decision_id, True, _("Proposal %(id)d approved; nothing was posted (%(why)s).",
                                            id=decision_id, why=why), state="info")
    return _answer(decision_id, False, _("Proposal %(id)d approved, but the platform refused it: %(error)s",
                                         id=decision_id, error=outcome.error), state="error", code=502)


def _conflict(decision_id: int) -> str:
    """Why an action was not done, in the page's language: the proposal is gone or already decided."""
    with web_context().store.session() as s:
        card = get_card(s, decision_id)
    if card is None:
        return _("Not done: proposal %(id)d does not exist.", id=decision_id)
    return _("Not done: proposal %(id)d is already %(status)s.", id=decision_id,
             status=status_label(card.decision.status))


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
        log.info("proposal %d: %s", decision_id, exc)
        return _answer(decision_id, False, _conflict(decision_id), state="conflict", code=409)
    log.info("proposal %d: %s by %s", decision_id, action, mod.login)
    if action == "reject":
        return _answer(decision_id, True, _("Proposal %(id)d rejected.", id=decision_id), state="rejected")
    return _answer(decision_id, True, _("Proposal %(id)d skipped (see the Skipped tab).", id=decision_id),
                   state="skipped")
