"""Exactly-once posting against an in-memory platform: texts, modes, the ledger, failures, reconciliation."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import Config
from bot.domain import Observation, RunMode, User
from bot.errors import AuthError, BudgetExhausted, PlatformError, UsageError
from bot.platforms.session import NotFound
from bot.post import (
    PostOutcome,
    _classify,
    auto_post_round,
    check_mode_allowed,
    post_decision,
    reconcile_open_intents,
)
from bot.store import Store
from bot.store.models import PostRow
from bot.store.posting import get_decision, list_posts
from bot.store.values import DecisionValue, PostValue
from bot.texts import render_text
from tests.post_fakes import FakePlatform, add_decision, crash_restart, http_error, make_config, now


def decision(store: Store, decision_id: int) -> DecisionValue:
    with store.session() as s:
        value = get_decision(s, decision_id)
    assert value is not None
    return value


def posts(store: Store) -> list[PostValue]:
    with store.session() as s:
        return list_posts(s)


def approve(store: Store, platform: FakePlatform, cfg: Config, decision_id: int, **kw: object):  # type: ignore[no-untyped-def]
    return post_decision(store, platform, decision_id, token="tok-mod", user_login="moderator",
                         mode=RunMode.of(cfg.posting.mode).for_moderator, cfg=cfg, **kw)  # type: ignore[arg-type]


def post_approved(store: Store, platform: FakePlatform, cfg: Config, **kw: Any) -> list[PostOutcome]:
    """The auto round in the mode the config gives (as `once` and the daemon compute it)."""
    return auto_post_round(store, platform, cfg, mode=RunMode.of(cfg.posting.mode), **kw)


# --- texts ---

def test_texts_say_a_model_helped_which_model_the_probability_photos_and_the_reviewer(store: Store,
                                                                                    tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    d = decision(store, add_decision(store, 1, score=0.873, n_photos=3, model_name="resnet-plants",
                                     model_version="2.1"))
    text = render_text(d, cfg, reviewed_by="alice")
    for needle in ("Rosa canina", "machine-learning model", "resnet-plants", "2.1", "87%", "3 photos", "alice"):
        assert needle in text
    auto = render_text(d, cfg, reviewed_by=None)
    assert "Not reviewed by a person" in auto and "alice" not in auto

    cfg.posting.language = "es"
    es = render_text(d, cfg, reviewed_by="alice")
    for needle in ("aprendizaje automático", "resnet-plants", "2.1", "87%", "3 fotos", "alice"):
        assert needle in es
    assert "Sin revisión humana" in render_text(d, cfg, reviewed_by=None)


def test_genus_comment_text_names_the_rank(store: Store, tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    d = decision(store, add_decision(store, 1, kind="genus", taxon_id=301, taxon_name="Rosa", score=0.44,
                                     n_photos=1))
    text = render_text(d, cfg, reviewed_by="bob")
    assert "genus Rosa" in text and "44%" in text and "1 photo " in text and "bob" in text


def test_templates_dir_overrides_the_shipped_text(store: Store, tmp_path: Path) -> None:
    custom = tmp_path / "texts" / "en"
    custom.mkdir(parents=True)
    (custom / "identification.j2").write_text("{{ taxon_name }} by {{ model_name }} ({{ percent }})")
    cfg = make_config(tmp_path, templates_dir=str(tmp_path / "texts"))
    d = decision(store, add_decision(store, 1))
    assert render_text(d, cfg, reviewed_by="x") == "Rosa canina by designed (87%)"
    (custom / "identification.j2").write_text("{{ no_such_name }}")
    cfg.posting.templates_dir = str(tmp_path / "texts") + "/"  # a new loader: no cached template
    with pytest.raises(UsageError, match="identification.j2"):
        render_text(d, cfg, reviewed_by="x")


# --- modes ---

def test_auto_mode_needs_explicit_opt_in_and_permission_on_inaturalist(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(tmp_path, mode="auto", allow_unreviewed=False)
    with pytest.raises(UsageError, match="allow_unreviewed"):
        check_mode_allowed(cfg)
    cfg.posting.allow_unreviewed = True
    cfg.platform.api_url = "https://api.inaturalist.org/v1"
    with pytest.raises(UsageError, match="i_have_written_permission"):
        check_mode_allowed(cfg)
    cfg.posting.i_have_written_permission = True
    with caplog.at_level(logging.WARNING, logger="bot.post"):
        check_mode_allowed(cfg)
    assert "without human review" in caplog.text
    review = make_config(tmp_path, mode="review")
    review.platform.api_url = "https://api.inaturalist.org/v1"
    check_mode_allowed(review)


def test_dry_run_never_sends_a_write(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, status="approved")
    platform = FakePlatform(dry_run=True)
    outcome = approve(store, platform, make_config(tmp_path), did)
    assert outcome.status == "skipped" and platform.writes == []
    outcome = approve(store, FakePlatform(), make_config(tmp_path, mode="dry-run"), did)
    assert outcome.status == "skipped"
    assert posts(store) == []


# --- the ledger ---

def test_intent_is_committed_before_the_request_and_completed_after(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, status="approved")
    seen_during_send: list[tuple[str, int | None]] = []

    def check(observation_id: int) -> None:  # runs inside the write, in another session
        seen_during_send.extend((p.status, p.remote_id) for p in posts(store) if p.observation_id == observation_id)

    platform = FakePlatform(on_send=check)
    outcome = approve(store, platform, make_config(tmp_path), did)
    assert seen_during_send == [("intent", None)]
    assert outcome.status == "posted" and outcome.remote_id is not None
    [row] = posts(store)
    assert (row.status, row.remote_id, row.user_login, row.mode, row.kind) == (
        "posted", outcome.remote_id, "moderator", "review", "identification")
    assert decision(store, did).status == "posted"
    [write] = platform.writes
    assert (write.token, write.observation_id, write.taxon_id) == ("tok-mod", 1, 401)
    assert "moderator" in write.body


def test_never_posts_twice_for_one_observation_and_model_version(store: Store, tmp_path: Path) -> None:
    first = add_decision(store, 1, status="approved")
    other_model = add_decision(store, 1, status="approved", model_name="other")  # same version "1"
    platform = FakePlatform()
    cfg = make_config(tmp_path)
    assert approve(store, platform, cfg, first).status == "posted"
    again = approve(store, platform, cfg, first)
    assert again.status == "already_posted"
    assert approve(store, platform, cfg, other_model).status == "already_posted"
    assert len(platform.writes) == 1


def test_moderator_edits_taxon_and_text(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, kind="genus", taxon_id=301, taxon_name="Rosa", status="approved")
    platform = FakePlatform()
    outcome = approve(store, platform, make_config(tmp_path), did, taxon_id=402, text="Rosa gallica, I think.")
    assert outcome.status == "posted"
    [write] = platform.writes
    assert (write.kind, write.taxon_id, write.body) == ("identification", 402, "Rosa gallica, I think.")


def test_genus_proposal_posts_a_comment(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, kind="genus", taxon_id=301, taxon_name="Rosa", status="approved")
    platform = FakePlatform()
    assert approve(store, platform, make_config(tmp_path), did).status == "posted"
    [write] = platform.writes
    assert write.kind == "comment" and "genus Rosa" in write.body


@pytest.mark.parametrize("how", ["user", "tag", "field"])
def test_opted_out_observations_are_never_posted_on(store: Store, tmp_path: Path, how: str) -> None:
    did = add_decision(store, 1, status="approved", login="shy" if how == "user" else "observer")
    platform = FakePlatform()
    platform.observations[1] = Observation(
        1, User(7, "observer"), (), tags=("NoBots",) if how == "tag" else (),
        field_values={"PlantBot": "No"} if how == "field" else {})
    cfg = make_config(tmp_path, opt_out_users=["Shy"], opt_out_tags=["nobots"], opt_out_field="PlantBot")
    outcome = approve(store, platform, cfg, did)
    assert outcome.status == "skipped" and "opt-out" in (outcome.error or "")
    assert platform.writes == [] and posts(store) == []
    assert decision(store, did).status == "opted_out"


def test_rejected_and_non_proposals_are_not_posted(store: Store, tmp_path: Path) -> None:
    platform = FakePlatform()
    cfg = make_config(tmp_path)
    assert approve(store, platform, cfg, add_decision(store, 1, status="rejected")).status == "skipped"
    assert approve(store, platform, cfg, add_decision(store, 2, kind="abstain", taxon_id=None,
                                                      status="recorded")).status == "skipped"
    assert platform.writes == []


# --- failures ---

def test_client_error_is_recorded_and_not_retried(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, status="approved", mode="auto")
    platform = FakePlatform(failures=[(http_error(422), False)])
    cfg = make_config(tmp_path, mode="auto")
    outcome = post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    assert [o.status for o in outcome] == ["failed"]
    assert "422" in (outcome[0].error or "")
    assert decision(store, did).status == "failed"
    assert post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot") == []
    assert len(platform.writes) == 1


def test_server_error_is_retried_after_backoff_and_reconciled_first(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, status="approved", mode="auto")
    # A 503 after the server did store it: the retry must find it instead of posting again.
    platform = FakePlatform(failures=[(http_error(503), True)])
    cfg = make_config(tmp_path, mode="auto")
    [first] = post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    assert first.status == "retry"
    [row] = posts(store)
    assert row.status == "retry" and row.next_attempt_at is not None and row.next_attempt_at > now()
    assert post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot") == []  # not due yet
    with store.session() as s:
        s.get(PostRow, row.id).next_attempt_at = now() - timedelta(seconds=1)  # type: ignore[union-attr]
    [second] = post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    assert second.status == "already_posted"
    assert len(platform.writes) == 1 and platform.count(1) == 1
    assert decision(store, did).status == "posted"


def test_backoff_grows_exponentially(store: Store, tmp_path: Path) -> None:
    add_decision(store, 1, status="approved", mode="auto")
    platform = FakePlatform(failures=[(http_error(502), False)] * 3)
    cfg = make_config(tmp_path, mode="auto")
    delays = []
    for _ in range(3):
        before = now()
        post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
        [row] = posts(store)
        assert row.next_attempt_at is not None
        delays.append((row.next_attempt_at - before).total_seconds())
        with store.session() as s:
            s.get(PostRow, row.id).next_attempt_at = now() - timedelta(seconds=1)  # type: ignore[union-attr]
    assert delays[1] > 1.8 * delays[0] and delays[2] > 1.8 * delays[1]
    post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    assert posts(store)[0].status == "posted" and platform.count(1) == 1


def test_429_ends_the_round_early(store: Store, tmp_path: Path) -> None:
    add_decision(store, 1, status="approved", mode="auto")
    add_decision(store, 2, status="approved", mode="auto")
    platform = FakePlatform(failures=[(http_error(429), False)])
    outcomes = post_approved(store, platform, make_config(tmp_path, mode="auto"), token="tok-bot",
                             user_login="plantbot")
    assert [o.status for o in outcomes] == ["retry"]
    assert len(platform.writes) == 1


def test_401_refreshes_the_token_once(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, status="approved", mode="auto")
    platform = FakePlatform()
    cfg = make_config(tmp_path, mode="auto")
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return "tok-new"

    outcome = post_decision(store, platform, did, token="expired", user_login="plantbot", mode=RunMode.AUTO, cfg=cfg,
                            token_provider=provider)
    assert outcome.status == "posted" and calls == [1]
    assert [w.token for w in platform.writes] == ["expired", "tok-new"]

    did2 = add_decision(store, 2, status="approved", mode="auto")
    outcome = post_decision(store, platform, did2, token="expired", user_login="plantbot", mode=RunMode.AUTO, cfg=cfg,
                            token_provider=lambda: "still-bad")
    assert outcome.status == "retry" and platform.count(2) == 0
    assert len(platform.writes) == 4  # one refresh, never a loop


# --- reconciliation and the auto round ---

def test_open_intent_found_on_the_platform_is_marked_posted_not_resent(store: Store, tmp_path: Path) -> None:
    did = add_decision(store, 1, status="approved", mode="auto")
    cfg = make_config(tmp_path, mode="auto")
    platform = FakePlatform(failures=[(KeyboardInterrupt(), True)])  # "crash" after the server stored it
    with pytest.raises(KeyboardInterrupt):
        post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    [row] = posts(store)
    assert row.status == "intent"
    assert reconcile_open_intents(store, platform, cfg) == 0  # its sender (this process) may still be at it
    crash_restart(store)
    assert approve(store, platform, cfg, did).status == "retry"  # an open intent is never sent blind
    assert reconcile_open_intents(store, platform, cfg) == 1
    [row] = posts(store)
    assert row.status == "posted" and row.remote_id == platform.idents[1][0].id
    assert decision(store, did).status == "posted"
    assert post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot") == []
    assert len(platform.writes) == 1


def test_open_intent_not_on_the_platform_is_posted_again_once(store: Store, tmp_path: Path) -> None:
    add_decision(store, 1, kind="family", taxon_id=201, taxon_name="Rosaceae", status="approved", mode="auto")
    cfg = make_config(tmp_path, mode="auto")
    platform = FakePlatform(failures=[(KeyboardInterrupt(), False)])  # crash before anything was stored
    with pytest.raises(KeyboardInterrupt):
        post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    crash_restart(store)
    outcomes = post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    assert [o.status for o in outcomes] == ["posted"]
    assert platform.count(1) == 1 and posts(store)[0].status == "posted"


def test_auto_round_posts_every_eligible_decision_once(store: Store, tmp_path: Path) -> None:
    for oid in (1, 2, 3):
        add_decision(store, oid, status="approved", mode="auto")
    add_decision(store, 4, status="proposed", mode="review")  # waits for a moderator
    add_decision(store, 5, status="recorded", mode="dry-run")
    platform = FakePlatform()
    cfg = make_config(tmp_path, mode="auto")
    outcomes = post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot")
    assert sorted(o.status for o in outcomes) == ["posted"] * 3
    assert post_approved(store, platform, cfg, token="tok-bot", user_login="plantbot") == []
    assert sorted(w.observation_id for w in platform.writes) == [1, 2, 3]
    assert all("Not reviewed by a person" in w.body for w in platform.writes)
    assert post_approved(store, platform, make_config(tmp_path, mode="review"), token="tok-bot",
                         user_login="plantbot") == []


@pytest.mark.parametrize(("error", "kind"), [
    (PlatformError("POST /v1/identifications: HTTP 422 (Taxon is not valid)", status=422), "failed"),
    (NotFound("POST /v1/comments: not found (HTTP 404)", status=404), "failed"),
    (AuthError("POST /v1/identifications: HTTP 403 (forbidden)", status=403), "failed"),
    (AuthError("POST /v1/identifications: HTTP 401 (expired)", status=401), "auth"),
    (PlatformError("POST /v1/identifications: HTTP 503 after retries; left for the next cycle", status=503), "retry"),
    (PlatformError("POST /v1/identifications: HTTP 429 after retries; left for the next cycle", status=429), "retry"),
    (PlatformError("POST /v1/identifications failed after retries: Read timed out"), "retry"),
    (BudgetExhausted("the daily API request budget is spent", retry_after=3600.0), "retry"),
])
def test_adapter_errors_are_classified_by_their_http_status(error: Exception, kind: str) -> None:
    assert _classify(error)[0] == kind


def test_an_open_intent_is_left_to_its_live_sender_until_the_lease_runs_out(store: Store, tmp_path: Path) -> None:
    from datetime import timedelta

    from bot.store import posting as q

    add_decision(store, 1, status="approved", mode="auto")
    platform = FakePlatform(failures=[(KeyboardInterrupt(), False)])
    with pytest.raises(KeyboardInterrupt):
        post_approved(store, platform, make_config(tmp_path, mode="auto"), token="tok-bot", user_login="plantbot")
    with store.session() as s:
        assert q.open_intents(s) == []  # this process opened it: it may still be waiting for the answer
        later = q.utcnow() + q.INTENT_LEASE + timedelta(minutes=1)
        assert [p.observation_id for p in q.open_intents(s, now=later)] == [1]
