"""The review queue's queries: ordering, filters, paging, and one winner per proposal."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.db import Store
from bot.store.models import DecisionRow, ObservationRow, PhotoRow, PredictionRow
from bot.store.review import (
    ActionConflict,
    QueueFilter,
    list_queue,
    list_review_actions,
    queue_counts,
    recent_actions,
    record_action,
    sized_photo_url,
)
from tests.conftest import copy_migrated

T0 = datetime(2026, 2, 1, 8, 0)


@pytest.fixture
def db(tmp_path: Path, migrated_template: Path) -> Store:
    store = Store(copy_migrated(migrated_template, tmp_path / "q.sqlite3"), migrate=False)
    kinds = ["species", "genus", "family", "species", "abstain"]
    scores = [0.9, 0.5, 0.35, 0.6, 0.1]
    with store.session() as s:
        for i, (kind, score) in enumerate(zip(kinds, scores, strict=True)):
            oid = 500 + i
            s.add(ObservationRow(id=oid, first_seen_at=T0, last_seen_at=T0, uri=f"https://x.test/observations/{oid}",
                                 user_login=f"observer{i % 2}", place_guess=["Retiro, Madrid", "Collserola"][i % 2],
                                 observed_at=datetime(2025, 6, 1 + i, 10, 0)))
            s.flush()
            s.add(PhotoRow(observation_id=oid, photo_id=oid * 10 + 1, position=1,
                           url=f"https://img.test/photos/{oid}1/square.jpg?5"))
            s.add(PhotoRow(observation_id=oid, photo_id=oid * 10, position=0, url=f"https://img.test/photos/{oid}0/original.png"))
            d = DecisionRow(observation_id=oid, kind=kind, taxon_id=100 + i, taxon_name=f"Taxon {i}", score=score,
                            model_name="m", model_version="1", created_at=T0 + timedelta(minutes=i),
                            status="proposed" if kind != "abstain" else "recorded")
            s.add(d)
            s.flush()
            for pos in range(7):
                s.add(PredictionRow(decision_id=d.id, rank="species", position=6 - pos, taxon_id=pos,
                                    name=f"sp{6 - pos}", prob=0.1))
            s.add(PredictionRow(decision_id=d.id, rank="genus", position=0, taxon_id=9, name="G", prob=0.7))
            s.add(PredictionRow(decision_id=d.id, rank="family", position=0, taxon_id=8,
                                name=f"Fam{i % 2}aceae", prob=0.8))
    return store


def test_queue_lists_proposals_oldest_first_with_all_photos_at_medium_size(db: Store) -> None:
    with db.session() as s:
        page = list_queue(s, QueueFilter())
    assert [c.observation.id for c in page.cards] == [500, 501, 502, 503]  # abstain is never a proposal
    assert page.total == 4
    first = page.cards[-1]
    assert first.photo_urls == ["https://img.test/photos/5030/medium.png", "https://img.test/photos/5031/medium.jpg?5"]
    assert [p.name for p in first.top_species] == ["sp0", "sp1", "sp2", "sp3", "sp4"]
    assert [p.name for p in first.genus] == ["G"] and [p.name for p in first.family] == ["Fam1aceae"]


def test_queue_filters_by_kind_and_score_and_pages(db: Store) -> None:
    with db.session() as s:
        species = list_queue(s, QueueFilter(kind="species"))
        confident = list_queue(s, QueueFilter(min_score=0.55))
        page2 = list_queue(s, QueueFilter(page=2, page_size=3))
        counts = queue_counts(s)
    assert [c.decision.kind for c in species.cards] == ["species", "species"]
    assert sorted(c.decision.score for c in confident.cards) == [0.6, 0.9]
    assert [c.observation.id for c in page2.cards] == [503] and page2.pages == 2
    assert counts == {"species": 2, "genus": 1, "family": 1}


def _ids(s: Session, **kw: Any) -> list[int]:
    return [c.observation.id for c in list_queue(s, QueueFilter(**kw)).cards]


def test_queue_filters_by_family_observer_place_and_observed_dates_and_sorts_by_probability(db: Store) -> None:
    with db.session() as s:
        assert _ids(s, taxon="fam1ACEAE") == [501, 503]
        assert _ids(s, taxon="taxon 2") == [502]  # the proposed taxon's name matches too
        assert _ids(s, observer="observer0") == [500, 502]
        assert _ids(s, place="madrid") == [500, 502]
        assert _ids(s, place="100%") == []  # wildcards are taken literally
        assert _ids(s, observed_from=date(2025, 6, 2), observed_to=date(2025, 6, 3)) == [501, 502]
        assert _ids(s, sort="prob_desc") == [500, 503, 501, 502]
        assert _ids(s, sort="prob_asc") == [502, 501, 503, 500]
        assert _ids(s, sort="newest") == [503, 502, 501, 500]


def test_an_action_moves_the_status_once_and_is_logged(db: Store) -> None:
    with db.session() as s:
        did = s.scalars(select(DecisionRow.id).where(DecisionRow.observation_id == 501)).one()
        record_action(s, did, "reject", "mod", reason="wrong genus")
    with db.session() as s, pytest.raises(ActionConflict, match="already rejected"):
        record_action(s, did, "approve", "other")
    with db.session() as s:
        assert s.scalars(select(DecisionRow.status).where(DecisionRow.id == did)).one() == "rejected"
        actions = list_review_actions(s)
        history = recent_actions(s)
    assert [(a.action, a.moderator, a.reason) for a in actions] == [("reject", "mod", "wrong genus")]
    assert history[0].observation_uri == "https://x.test/observations/501"


def test_skipped_proposals_leave_the_queue_but_can_be_approved_later(db: Store) -> None:
    with db.session() as s:
        did = s.scalars(select(DecisionRow.id).where(DecisionRow.observation_id == 500)).one()
        record_action(s, did, "skip", "mod", allowed_from=("proposed",))
    with db.session() as s:
        assert did not in [c.decision.id for c in list_queue(s, QueueFilter()).cards]
        assert [c.decision.id for c in list_queue(s, QueueFilter(status="skipped")).cards] == [did]
        record_action(s, did, "approve", "mod")
        assert s.scalars(select(DecisionRow.status).where(DecisionRow.id == did)).one() == "approved"


def test_non_proposals_cannot_be_acted_on(db: Store) -> None:
    with db.session() as s:
        did = s.scalars(select(DecisionRow.id).where(DecisionRow.kind == "abstain")).one()
        with pytest.raises(ActionConflict):
            record_action(s, did, "approve", "mod")
        with pytest.raises(ActionConflict, match="does not exist"):
            record_action(s, 99999, "approve", "mod")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://static.inaturalist.org/photos/1/square.jpg?1690", "https://static.inaturalist.org/photos/1/medium.jpg?1690"),
    ("https://h/photos/2/original.JPG", "https://h/photos/2/medium.JPG"),
    ("http://fork.example/photos/3/thumb.jpeg?1690", "http://fork.example/photos/3/medium.jpeg?1690"),  # a Rails fork
    ("https://h/other/picture.jpg", "https://h/other/picture.jpg"),
])
def test_photo_urls_are_shown_at_medium_size(url: str, expected: str) -> None:
    assert sized_photo_url(url) == expected
