"""The store: migrations match the models, and re-recording never doubles a decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from bot.domain import Decision, DecisionKind, Observation, Photo, Ranked, User
from bot.store import Store, current_revision, downgrade, make_engine, records, upgrade
from bot.store.models import Base, DecisionRow, PhotoRow, PredictionRow


def test_upgrade_from_empty_creates_every_table(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    upgrade(db)
    engine = make_engine(db)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    upgrade(db)
    head = current_revision(db)
    downgrade(db, "base")
    assert current_revision(db) is None
    engine = make_engine(db)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(db)
    assert current_revision(db) == head


def test_autogenerate_finds_no_difference(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    upgrade(db)
    engine = make_engine(db)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def _obs(i: int) -> Observation:
    return Observation(id=i, user=User(1, "u"), photos=(Photo(10 * i, f"http://h/photos/{10 * i}/square.jpg"),),
                       iconic_taxon_name="Plantae")


def test_decision_recorded_once_per_model_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite3")
    decision = Decision(1, DecisionKind.SPECIES, taxon_id=5, taxon_name="A b", rank="species", score=0.8,
                        top_species=(Ranked("A b", 5, 0.8),), best_genus=Ranked("A", 4, 0.9, "genus"), n_photos=1)
    kw = {"model_name": "m", "cutoff": 0.3, "mode": "dry-run", "dry_run": True, "status": "recorded",
          "cycle_id": None}
    with store.session() as s:
        records.upsert_observations(s, [_obs(1)], "p")
        records.upsert_observations(s, [_obs(1)], "p")  # seen twice: still one row, one photo
        first = records.record_decision(s, decision, model_version="1", **kw)  # type: ignore[arg-type]
        again = records.record_decision(s, decision, model_version="1", **kw)  # type: ignore[arg-type]
        other = records.record_decision(s, decision, model_version="2", **kw)  # type: ignore[arg-type]
    assert first is not None and again is None and other is not None
    with store.session() as s:
        assert len(s.scalars(select(PhotoRow)).all()) == 1
        assert len(s.scalars(select(DecisionRow)).all()) == 2
        ranks = [(p.rank, p.name) for p in s.scalars(select(PredictionRow).where(PredictionRow.decision_id == first))]
        assert ranks == [("species", "A b"), ("genus", "A")]
        assert records.decided_ids(s, [1, 2], "m", "1") == {1}
        assert records.undecided_ids(s, "p", max_attempts=3) == []  # decided (by any model version)
        records.upsert_observations(s, [_obs(2)], "p")
        assert records.undecided_ids(s, "p", max_attempts=3) == [2]
        records.note_attempt(s, 2, "photos failed")
        assert records.undecided_ids(s, "p", max_attempts=1) == []  # out of attempts
    store.close()


def test_cursor_only_moves_forward(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite3")
    with store.session() as s:
        assert records.get_cursor(s, "k") == 0
        records.set_cursor(s, "k", 500)
        records.set_cursor(s, "k", 300)
    with store.session() as s:
        assert records.get_cursor(s, "k") == 500
    store.close()


def test_failed_transaction_leaves_no_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite3")
    try:
        with store.session() as s:
            records.upsert_observations(s, [_obs(7)], "p")
            raise RuntimeError("crash mid-write")
    except RuntimeError:
        pass
    with store.session() as s:
        assert records.undecided_ids(s, "p", 3) == []
    store.close()


def _checks(db: Path) -> dict[str, set[str]]:
    """The values each CHECK-constrained status column allows, as the migrated database has them."""
    import re

    engine = make_engine(db)
    with engine.connect() as conn:
        sql = " ".join(r[0] for r in conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table'")))
    engine.dispose()
    return {name: set(re.findall(r"'(\w+)'", values))
            for name, values in re.findall(r"CONSTRAINT (ck_\w+) CHECK \(\w+ IN \(([^)]*)\)\)", sql)}


def test_migrated_status_checks_allow_exactly_the_enum_values(tmp_path: Path) -> None:
    from bot.domain import CycleStatus, DecisionStatus, Outcome, PhotoStatus, PostStatus

    db = tmp_path / "x.sqlite3"
    upgrade(db)
    assert _checks(db) == {
        "ck_decisions_status": set(DecisionStatus), "ck_posts_status": set(PostStatus),
        "ck_photos_status": set(PhotoStatus), "ck_outcomes_outcome": set(Outcome), "ck_cycles_status": set(CycleStatus),
    }


def test_the_database_refuses_a_status_no_enum_knows(tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    store = Store(tmp_path / "x.sqlite3")
    with store.session() as s:
        cycle_id = records.start_cycle(s, dry_run=True)
    with pytest.raises(IntegrityError, match="ck_cycles_status"), store.session() as s:
        s.execute(text("UPDATE cycles SET status = 'finished' WHERE id = :id"), {"id": cycle_id})
    with store.session() as s:  # nothing half-written: the cycle still reads as running
        assert s.scalar(text("SELECT status FROM cycles")) == "running"


def test_a_cycle_left_running_by_a_dead_process_is_marked_abandoned(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bot.store import records
    from bot.store.models import CycleRow

    store = Store(tmp_path / "x.sqlite3")
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{records.process_owner().rpartition(':')[0]}:{int(child.stdout)}"
    with store.session() as s:
        killed = records.start_cycle(s, dry_run=True)
        s.get(CycleRow, killed).owner = dead  # as if that process had been killed mid-cycle
        live = records.start_cycle(s, dry_run=True)  # this process: still running
    with store.session() as s:
        newest = records.start_cycle(s, dry_run=True)
        statuses = {c.id: c.status for c in s.scalars(select(CycleRow))}
    assert statuses == {killed: "abandoned", live: "running", newest: "running"}
    store.close()
