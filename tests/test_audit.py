"""Outcome tracking (`refresh_outcomes`) against an in-process platform with a known world."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.config import Config
from bot.report.outcomes import refresh_outcomes
from bot.store.audit import latest_outcomes
from bot.store.db import Store
from bot.store.models import DecisionRow, ObservationRow, OutcomeRow
from bot.store.values import OutcomeValue
from tests.audit_helpers import CASES, T0, TRACKED, Case, FakePlatform, seed


def latest(store: Store) -> dict[int, OutcomeValue]:
    with store.session() as s:
        return latest_outcomes(s)


def test_each_outcome_class_matches_the_hand_computed_one(store: Store) -> None:
    seed(store)
    platform = FakePlatform(CASES)
    counts = refresh_outcomes(store, platform, Config(), now=T0 + timedelta(days=1))  # type: ignore[arg-type]
    got = latest(store)
    assert {d: o.outcome for d, o in got.items()} == {c.decision_id: c.expected for c in TRACKED}
    assert counts == {"checked": 12, "confirmed": 2, "refined": 2, "contradicted": 3, "pending": 2,
                      "gone": 3, "requests": 1}
    states = {d: o.post_state for d, o in got.items()}
    assert states[6] == "deleted" and states[7] == "withdrawn" and states[10] == "hidden"
    assert states[1] == "current" and states[8] == "current" and states[11] == "none"
    assert got[2].community_taxon_id == 40 and got[2].observation_taxon_id == 40
    assert got[1].checked_at == T0 + timedelta(days=1)


def test_a_second_check_keeps_history_and_moves_latest(store: Store) -> None:
    seed(store)
    platform = FakePlatform(CASES)
    refresh_outcomes(store, platform, Config(), now=T0 + timedelta(days=1))  # type: ignore[arg-type]
    platform.cases[104] = Case(4, 104, "species", 31, 0.55, 1, post_kind="identification", remote_id=5004,
                               approver="bob", community=31)
    counts = refresh_outcomes(store, platform, Config(), now=T0 + timedelta(days=2))  # type: ignore[arg-type]
    assert counts["checked"] == 11  # d6's observation is deleted: not re-read
    assert latest(store)[4].outcome == "confirmed"
    with store.session() as s:
        history = s.scalars(select(OutcomeRow.outcome).where(OutcomeRow.decision_id == 4)
                            .order_by(OutcomeRow.checked_at)).all()
        n_latest = s.scalar(select(func.count()).where(OutcomeRow.latest.is_(True)))
    assert history == ["pending", "confirmed"]
    assert n_latest == 12


def _many(n: int) -> list[Case]:
    return [Case(1000 + i, 20_000 + i, "species", 30, 0.9, 1, post_kind="identification",
                 remote_id=90_000 + i, approver="alice", community=30, expected="confirmed") for i in range(n)]


def test_batches_hold_at_most_30_ids_and_never_checked_go_first(store: Store) -> None:
    cases = _many(65)
    seed(store, cases)
    platform = FakePlatform(cases)
    refresh_outcomes(store, platform, Config(), now=T0 + timedelta(days=1), limit=40)  # type: ignore[arg-type]
    assert [len(r) for r in platform.requests] == [30, 10]
    first = {i for r in platform.requests for i in r}
    assert first == {20_000 + i for i in range(40)}  # oldest decisions first
    platform.requests.clear()
    refresh_outcomes(store, platform, Config(), now=T0 + timedelta(days=2), limit=30)  # type: ignore[arg-type]
    # the 25 never checked come before the 5 checked longest ago
    assert set(platform.requests[0]) == {20_000 + i for i in range(40, 65)} | {20_000 + i for i in range(5)}


def test_budget_exhaustion_stops_and_keeps_finished_batches(store: Store) -> None:
    cases = _many(45)
    seed(store, cases)
    platform = FakePlatform(cases, budget=1)
    counts = refresh_outcomes(store, platform, Config(), now=T0)  # type: ignore[arg-type]
    assert counts["checked"] == 30 and "budget" in str(counts["stopped"])
    assert len(latest(store)) == 30


def test_taxa_known_from_the_observation_cost_no_extra_request(store: Store) -> None:
    seed(store)
    platform = FakePlatform(CASES)
    refresh_outcomes(store, platform, Config(), now=T0)  # type: ignore[arg-type]
    # each community taxon comes with the observation; only proposals not seen there are looked up
    assert len(platform.taxon_requests) == len(set(platform.taxon_requests))
    assert 40 not in platform.taxon_requests


def test_decisions_that_were_never_posted_are_not_tracked(store: Store) -> None:
    seed(store)
    refresh_outcomes(store, FakePlatform(CASES), Config(), now=T0)  # type: ignore[arg-type]
    got = latest(store)
    assert not {13, 14, 15} & set(got)
    with store.session() as s:
        assert s.scalar(select(func.count(DecisionRow.id))) == 15
        assert s.scalar(select(func.count(ObservationRow.id))) == 15
    assert isinstance(next(iter(got.values())).checked_at, datetime)
