"""Withdrawing a bad model version's identifications, exactly once.

Like posting, each withdrawal is a ledger row (PostRow, action "withdraw") written as an intent
before the request and completed after it.  A re-run skips completed rows; an intent left open by a
crash is reconciled by reading the identification back instead of guessing.  Only an
identification's author can withdraw it, so posts made under another login are listed, not touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.config import Config
from bot.domain import WithdrawalStatus
from bot.errors import AuthError, PlatformError
from bot.platforms.base import Platform
from bot.store.audit import current_posted_identifications
from bot.store.db import Store
from bot.store.posting import get_post
from bot.store.withdrawals import complete_withdrawal, mark_retracted, open_withdraw_intent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retraction:
    """One identification of the version and what happened to it."""

    post_id: int
    decision_id: int
    observation_id: int
    remote_id: int
    taxon_id: int | None
    user_login: str
    status: WithdrawalStatus


def _already_withdrawn(platform: Platform, observation_id: int, remote_id: int) -> bool:
    """Reconciling an open intent: is the identification already not current upstream?"""
    for ident in platform.get_identifications(observation_id):
        if ident.id == remote_id:
            return not ident.current
    return True  # gone entirely: nothing left to withdraw


def _open_intent(store: Store, post_id: int, user_login: str) -> tuple[int, bool]:
    """Writes (or finds) the withdraw intent; returns its id and whether it was left open before."""
    with store.session() as s:
        opened = open_withdraw_intent(s, post_id, user_login)
    if opened is None:
        raise PlatformError(f"post {post_id} is not in the ledger")
    return opened


def _complete(store: Store, row_id: int, error: str | None, user_login: str) -> None:
    with store.session() as s:
        found = complete_withdrawal(s, row_id, error, user_login)
    if not found:  # written by _open_intent moments ago; only a hand-edited database loses it
        raise PlatformError(f"withdraw intent {row_id} is not in the ledger")


def withdraw_post(store: Store, platform: Platform, *, post_id: int, token: str, user_login: str) -> WithdrawalStatus:
    """Withdraws one posted identification exactly once (WITHDRAWN or FAILED).

    Also the entry point for the review UI, where each withdrawal is approved like a post.
    """
    with store.session() as s:
        post = get_post(s, post_id)
    if post is None or post.remote_id is None:
        raise PlatformError(f"post {post_id} has no posted identification to withdraw")
    observation_id, remote_id = post.observation_id, post.remote_id
    row_id, reconcile = _open_intent(store, post_id, user_login)
    try:
        if not (reconcile and _already_withdrawn(platform, observation_id, remote_id)):
            platform.update_identification(token, remote_id, current=False)
    except PlatformError as exc:
        log.warning("withdrawing identification %s on observation %s failed: %s", remote_id,
                    observation_id, exc)
        _complete(store, row_id, str(exc), user_login)
        return WithdrawalStatus.FAILED
    _complete(store, row_id, None, user_login)
    log.info("withdrew identification %s on observation %s", remote_id, observation_id)
    return WithdrawalStatus.WITHDRAWN


def retract_model_version(store: Store, platform: Platform, cfg: Config, *, version: str,
                          token: str | None, user_login: str | None, dry_run: bool) -> list[Retraction]:
    """Lists the version's current posted identifications and, unless dry-run, withdraws them.

    Dry-run (or a dry-run platform) sends nothing and writes nothing: the list says what would go.
    """
    del cfg
    with store.session() as s:
        posts = [(p.id, p.decision_id, p.observation_id, p.remote_id or 0, p.taxon_id, p.user_login)
                 for p in current_posted_identifications(s, version)]
    dry = dry_run or platform.dry_run
    if not dry and (token is None or not user_login):
        raise AuthError("withdrawing needs the author's token and login (set PLANTBOT_API_TOKEN)")
    if not dry:
        with store.session() as s:
            mark_retracted(s, version)
    token, user_login = token or "", user_login or ""
    out: list[Retraction] = []
    for post_id, decision_id, obs_id, remote_id, taxon_id, author in posts:
        if user_login and author != user_login:
            status = WithdrawalStatus.OTHER_AUTHOR
        elif dry:
            status = WithdrawalStatus.WOULD_WITHDRAW
        else:
            status = withdraw_post(store, platform, post_id=post_id, token=token, user_login=user_login)
        out.append(Retraction(post_id, decision_id, obs_id, remote_id, taxon_id, author, status))
    return out


def left_by_author(rows: list[Retraction]) -> dict[str, list[Retraction]]:
    """What a retract run could not withdraw itself, per author login (their own withdrawal needed;
    failed ones are retried by the next run)."""
    out: dict[str, list[Retraction]] = {}
    for r in rows:
        if r.status in (WithdrawalStatus.OTHER_AUTHOR, WithdrawalStatus.FAILED):
            out.setdefault(r.user_login, []).append(r)
    return dict(sorted(out.items()))
