"""Exactly-once posting: intents and reconciliation (the texts are in `bot.texts`).

Every write follows the same ledger discipline (`bot.store.posting`):

1. an *intent* row is committed before the request goes out;
2. the request is sent (identifications never carry `vision: true`, which would claim the pick came
   from iNaturalist's own vision model);
3. the row is completed with the remote id, or with the error.

A crash between 1 and 3 leaves an open intent.  Instead of posting again, `reconcile_open_intents`
asks the platform whether that identification or comment exists (by that user, on that
observation, with that taxon or text) and settles the row.  A row that must be retried is
reconciled again right before it is re-sent, because a 5xx or a lost answer may still have written.
The ledger's unique key (observation, model version, action) makes a second post impossible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from bot.config import INAT_NETWORK_API_HOSTS, Config
from bot.domain import PROPOSAL_KINDS, DecisionKind, DecisionStatus, PostResult, PostStatus, RunMode
from bot.errors import AuthError, BudgetExhausted, PlatformError, UsageError
from bot.platforms import NotFound
from bot.platforms.base import Platform
from bot.store import Store
from bot.store import posting as q
from bot.store.values import DecisionValue, PostValue
from bot.texts import render_body

log = logging.getLogger(__name__)

NOT_POSTABLE = (DecisionStatus.RECORDED, DecisionStatus.REJECTED, DecisionStatus.WITHDRAWN, DecisionStatus.OPTED_OUT)
OPT_OUT_VALUES = ("no", "false", "0", "opt-out", "opt out")


@dataclass(frozen=True)
class PostOutcome:
    """What happened to one post; `post_id` is the ledger row (0 when none was written)."""

    post_id: int
    status: PostResult
    remote_id: int | None = None
    error: str | None = None
    throttled: bool = False  # a 429 or a spent budget: the round stops, the rest waits for the next one


# --- modes ------------------------------------------------------------------------------------

def is_inat_network(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in INAT_NETWORK_API_HOSTS or host.endswith(".inaturalist.org")


def check_mode_allowed(cfg: Config) -> None:
    """Refuses unreviewed posting unless it was explicitly allowed (and, on iNaturalist, permitted)."""
    po = cfg.posting
    if po.mode != "auto":
        return
    where = str(cfg.source) if cfg.source else "<config>"
    if not po.allow_unreviewed:
        raise UsageError(f"{where}: [posting] mode = \"auto\" posts without human review; "
                         "set [posting] allow_unreviewed = true to allow it")
    if (is_inat_network(cfg.platform.api_url) or is_inat_network(cfg.platform.site_url)) \
            and not po.i_have_written_permission:
        raise UsageError(f"{where}: [posting] mode = \"auto\" against {cfg.platform.api_url}: iNaturalist forbids "
                         "unreviewed machine identifications; set [posting] i_have_written_permission = true "
                         "only if you hold written permission")
    log.warning("posting mode is AUTO: suggestions are posted without human review, as %s",
                po.account_login or "the bot account")


# --- talking to the platform -------------------------------------------------------------------

def _classify(exc: Exception) -> tuple[str, str]:
    """('auth'|'retry'|'failed', message): 4xx but 429 is final, the rest may work later.

    Only `PlatformError`s carry a status; anything else (a parse slip, a bug in a fake) is retried.
    """
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    status = exc.status if isinstance(exc, PlatformError) else None
    if status == 401 or (status is None and isinstance(exc, AuthError)):
        return "auth", message
    if status is not None and 400 <= status < 500 and status != 429:
        return "failed", message
    return "retry", message  # 5xx, 429, spent budgets, timeouts, connection errors: nothing known to be final


def _throttled(exc: Exception) -> bool:
    return isinstance(exc, BudgetExhausted) or (isinstance(exc, PlatformError) and exc.throttled)


def _same_text(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").split()) == " ".join((b or "").split())


def find_remote(platform: Platform, post: PostValue) -> int | None:
    """The remote id of the write this ledger row describes, if the platform has it."""
    login = post.user_login.lower()
    if post.kind == "identification":
        for ident in platform.get_identifications(post.observation_id):
            if ident.user.login.lower() == login and ident.taxon is not None and ident.taxon.id == post.taxon_id:
                return ident.id
        return None
    for comment in platform.get_comments(post.observation_id):
        if comment.user.login.lower() == login and _same_text(comment.body, post.body):
            return comment.id
    return None


def _send(platform: Platform, post: PostValue, token: str) -> int:
    if post.kind == "identification":
        if post.taxon_id is None:  # claim_intent never writes one; a hand-edited row would
            raise ValueError(f"post {post.id} is an identification without a taxon id")
        return platform.post_identification(token, post.observation_id, post.taxon_id, post.body)
    return platform.post_comment(token, post.observation_id, post.body)


def _settle_existing(store: Store, platform: Platform, post: PostValue) -> PostOutcome | None:
    """Before re-sending a retry: did an earlier attempt land after all?  None means send again."""
    try:
        remote = find_remote(platform, post)
    except Exception as exc:  # a read failed: try the whole post later, never blind
        return PostOutcome(post.id, PostResult.RETRY, None, f"cannot check earlier attempt: {_classify(exc)[1]}")
    if remote is None:
        return None
    with store.session() as s:
        q.mark_posted(s, post.id, remote)
    log.info("post %s on observation %s was already on the platform (id %s)", post.id, post.observation_id, remote)
    return PostOutcome(post.id, PostResult.ALREADY_POSTED, remote, None)


def _opt_out_reason(platform: Platform, cfg: Config, observation_id: int, login: str | None) -> str | None:
    po = cfg.posting
    users = {u.lower() for u in po.opt_out_users}
    if login and login.lower() in users:
        return f"opt-out: observer {login}"
    if not (po.opt_out_tags or po.opt_out_field or (users and not login)):
        return None
    found = platform.get_observations([observation_id])
    if not found:
        return "observation no longer exists"
    obs = found[0]
    if obs.user.login.lower() in users:
        return f"opt-out: observer {obs.user.login}"
    tags = {t.lower() for t in obs.tags}
    hit = next((t for t in po.opt_out_tags if t.lower() in tags), None)
    if hit:
        return f"opt-out: tag {hit}"
    if po.opt_out_field:
        value = obs.field_values.get(po.opt_out_field)
        if value is not None and value.strip().lower() in OPT_OUT_VALUES:
            return f"opt-out: field {po.opt_out_field} = {value}"
    return None


# --- one post ---------------------------------------------------------------------------------

def post_decision(store: Store, platform: Platform, decision_id: int, *, token: str, user_login: str,
                  mode: RunMode, cfg: Config, text: str | None = None, taxon_id: int | None = None,
                  token_provider: Callable[[], str] | None = None) -> PostOutcome:
    """Posts one approved decision, exactly once.

    `mode` is the run's (a moderator's approval posts in review mode: `RunMode.for_moderator`); in
    dry-run nothing is sent.  `token`/`user_login` are the moderator's (review) or the bot account's (auto).  `text` and
    `taxon_id` carry a moderator's edits; an explicit `taxon_id` always posts an identification.
    On a 401 the token is refreshed once through `token_provider` when one is given.
    """
    if mode.dry_run or platform.dry_run:
        return PostOutcome(0, PostResult.SKIPPED, None, "dry-run: no write request is sent")
    if mode not in (RunMode.REVIEW, RunMode.AUTO):
        raise UsageError(f"posting mode {mode!r} is not review or auto")
    with store.session() as s:
        decision = q.get_decision(s, decision_id)
        if decision is None:
            return PostOutcome(0, PostResult.SKIPPED, None, f"decision {decision_id} does not exist")
        existing = q.find_post(s, decision.observation_id, decision.model_version)
        obs = q.get_observation(s, decision.observation_id)
        login = obs.user_login if obs else None
    if existing is not None:
        early = _existing_outcome(store, platform, existing)
        if early is not None:
            return early
    if decision.kind not in PROPOSAL_KINDS or decision.status in NOT_POSTABLE:
        return PostOutcome(0, PostResult.SKIPPED, None, f"decision {decision_id} is {decision.kind}/{decision.status}")
    try:
        reason = _opt_out_reason(platform, cfg, decision.observation_id, login)
    except Exception as exc:
        return _no_row_retry(store, decision, existing, f"cannot check opt-out: {_classify(exc)[1]}")
    if reason:
        return _opt_out(store, decision, existing, reason)
    identification = decision.kind == DecisionKind.SPECIES or taxon_id is not None
    target = taxon_id if taxon_id is not None else decision.taxon_id
    if identification and target is None:
        return PostOutcome(0, PostResult.SKIPPED, None, f"decision {decision_id} has no taxon id to identify with")
    body = text if text is not None else _body(platform, decision, cfg, mode, user_login, taxon_id, identification)
    try:
        with store.session() as s:
            post = q.claim_intent(s, decision=decision, kind="identification" if identification else "comment",
                                  taxon_id=target if identification else None, body=body, user_login=user_login,
                                  mode=mode, existing=existing)
            if decision.status == DecisionStatus.PROPOSED:
                q.set_decision_status(s, decision.id, DecisionStatus.APPROVED)
    except q.ClaimConflict:
        return PostOutcome(0, PostResult.SKIPPED, None, "another process is posting this observation right now")
    return _complete(store, platform, post, token, token_provider)


def _existing_outcome(store: Store, platform: Platform, existing: PostValue) -> PostOutcome | None:
    """What an existing ledger row means for a new attempt; None: go on and (re-)send."""
    if existing.status == PostStatus.POSTED:
        return PostOutcome(existing.id, PostResult.ALREADY_POSTED, existing.remote_id, None)
    if existing.status == PostStatus.FAILED:
        return PostOutcome(existing.id, PostResult.FAILED, None, existing.error)
    if existing.status == PostStatus.SKIPPED:
        return PostOutcome(existing.id, PostResult.SKIPPED, None, existing.error)
    if existing.status == PostStatus.INTENT:
        # Someone is sending it now, or a crash left it open: reconciliation settles it, never a blind send.
        return PostOutcome(existing.id, PostResult.RETRY, None,
                           "an earlier attempt is still open; it will be reconciled")
    return _settle_existing(store, platform, existing)


def _body(platform: Platform, decision: DecisionValue, cfg: Config, mode: RunMode, user_login: str,
          taxon_id: int | None, identification: bool) -> str:
    reviewed_by = user_login if mode is RunMode.REVIEW else None
    name = None
    if taxon_id is not None and taxon_id != decision.taxon_id:
        try:
            taxon = platform.get_taxon(taxon_id)
        except Exception as exc:  # the text then names the taxon by id; the post itself still goes out
            log.warning("cannot read taxon %s for the post text: %s", taxon_id, _classify(exc)[1])
            taxon = None
        name = taxon.name if taxon else f"taxon {taxon_id}"
    return render_body(decision, cfg, reviewed_by, identification=identification, taxon_name=name)


def _no_row_retry(store: Store, decision: DecisionValue, existing: PostValue | None, error: str) -> PostOutcome:
    if existing is not None:
        with store.session() as s:
            q.mark_retry(s, existing.id, error, q.utcnow() + q.backoff(existing.attempts))
        return PostOutcome(existing.id, PostResult.RETRY, None, error)
    return PostOutcome(0, PostResult.RETRY, None, error)


def _opt_out(store: Store, decision: DecisionValue, existing: PostValue | None, reason: str) -> PostOutcome:
    log.info("not posting on observation %s: %s", decision.observation_id, reason)
    with store.session() as s:
        q.set_decision_status(s, decision.id, DecisionStatus.OPTED_OUT, reason)
        if existing is not None:
            q.mark_skipped(s, existing.id, reason)
    return PostOutcome(existing.id if existing else 0, PostResult.SKIPPED, None, reason)


def _complete(store: Store, platform: Platform, post: PostValue, token: str,
              token_provider: Callable[[], str] | None) -> PostOutcome:
    """Sends the committed intent and records the answer (a 401 refreshes the token once)."""
    refreshed = False
    while True:
        try:
            remote = _send(platform, post, token)
            break
        except Exception as exc:
            kind, message = _classify(exc)
            if kind == "auth" and token_provider is not None and not refreshed:
                refreshed = True
                try:
                    token = token_provider()
                    continue
                except Exception as refresh_exc:
                    message = f"token refresh failed: {_classify(refresh_exc)[1]}"
            return _record_error(store, post, PostResult.RETRY if kind == "auth" else PostResult(kind), message,
                                 _throttled(exc))
    with store.session() as s:
        q.mark_posted(s, post.id, remote)
    log.info("posted %s %s on observation %s as %s", post.kind, remote, post.observation_id, post.user_login)
    return PostOutcome(post.id, PostResult.POSTED, remote, None)


def _record_error(store: Store, post: PostValue, kind: PostResult, message: str,
                  throttled: bool = False) -> PostOutcome:
    with store.session() as s:
        if kind == PostResult.FAILED:
            q.mark_failed(s, post.id, message)
        else:
            q.mark_retry(s, post.id, message, q.utcnow() + q.backoff(post.attempts))
    log.warning("post %s on observation %s: %s (%s)", post.id, post.observation_id, kind, message)
    return PostOutcome(post.id, kind, None, message, throttled)


# --- rounds -----------------------------------------------------------------------------------

def reconcile_open_intents(store: Store, platform: Platform, cfg: Config) -> int:
    """Settles intents a crash left open; returns how many were resolved (found: posted; absent: retry)."""
    with store.session() as s:
        intents = q.open_intents(s)
    resolved = 0
    for post in intents:
        gone = False
        try:
            remote = find_remote(platform, post)
        except NotFound:
            remote, gone = None, True
        except Exception as exc:
            log.warning("cannot reconcile post %s on observation %s yet: %s", post.id, post.observation_id,
                        _classify(exc)[1])
            continue
        with store.session() as s:
            current = q.get_post(s, post.id)
            if current is None or current.status != PostStatus.INTENT:
                continue  # completed meanwhile by the process that sent it
            if remote is not None:
                q.mark_posted(s, post.id, remote)
            elif gone:
                q.mark_failed(s, post.id, "the observation no longer exists")
            else:
                q.mark_retry(s, post.id, "interrupted before an answer; not found on the platform", q.utcnow())
        log.info("reconciled post %s on observation %s: %s", post.id, post.observation_id,
                 f"found as {remote}" if remote is not None else "not found, will retry")
        resolved += 1
    return resolved


def auto_post_round(store: Store, platform: Platform, cfg: Config, *, mode: RunMode, token: str, user_login: str,
                    token_provider: Callable[[], str] | None = None) -> list[PostOutcome]:
    """The auto-mode posting round (`once` and the daemon alike): settles open intents once, then posts
    approved decisions and due retries under the bot's account.  Outside auto mode it does nothing.

    A 429 or a spent budget ends the round early; the rest waits for the next one.
    """
    if mode is not RunMode.AUTO or platform.dry_run:
        return []
    check_mode_allowed(cfg)
    reconcile_open_intents(store, platform, cfg)
    with store.session() as s:
        ids = q.approved_unposted(s, mode) + [p.decision_id for p in q.due_retries(s, mode)]
    current = {"token": token}

    def refresh(provider: Callable[[], str]) -> Callable[[], str]:
        def renew() -> str:
            current["token"] = provider()
            return current["token"]
        return renew

    renew = refresh(token_provider) if token_provider is not None else None
    outcomes: list[PostOutcome] = []
    for decision_id in dict.fromkeys(ids):
        outcome = post_decision(store, platform, decision_id, token=current["token"], user_login=user_login,
                                mode=mode, cfg=cfg, token_provider=renew)
        outcomes.append(outcome)
        if outcome.throttled:
            log.warning("posting round stopped early: %s", outcome.error)
            break
    return outcomes
