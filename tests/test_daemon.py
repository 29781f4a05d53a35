"""The daemon's wiring with a fake cycle and platform: lock, failures, auto rounds, signals."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import bot.daemon as daemon
from bot.config import Config
from bot.daemon import AlreadyRunning, build_scheduler, instance_lock, run_daemon
from bot.domain import RunMode
from bot.errors import UsageError
from bot.store import Store
from bot.store.models import KeyValueRow, PostRow
from tests.post_fakes import FakePlatform, add_decision, make_config
from tests.support.simconfig import write_sim_config


class BotPlatform(FakePlatform):
    """The fake platform plus the adapter's token method for auto mode."""

    def get_token(self) -> str:
        return "tok-bot"


def test_a_second_instance_on_the_same_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "plantbot.sqlite3"
    with instance_lock(db):
        with pytest.raises(AlreadyRunning, match=f"already running on {db} \\(pid {os.getpid()}"), \
                instance_lock(db):
            pass
        with instance_lock(tmp_path / "other.sqlite3"):  # another database is fine
            pass
    with instance_lock(db):  # released on exit
        pass


def test_jobs_have_ids_single_instances_and_coalesce(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, mode="auto")
    ctx = daemon.DaemonContext(cfg=cfg, store=None, platform=BotPlatform(), classifier=None,  # type: ignore[arg-type]
                               mode=RunMode.AUTO)
    jobs = {j.id: j for j in build_scheduler(ctx).get_jobs()}
    assert set(jobs) == {"poll", "post", "token-refresh", "audit-refresh"}
    assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
    ctx.mode = RunMode.DRY_RUN
    assert {j.id for j in build_scheduler(ctx).get_jobs()} == {"poll", "audit-refresh"}


def fake_cycles(monkeypatch: pytest.MonkeyPatch, effects: list[Any]) -> list[int]:
    """Replaces run_cycle: each call takes the next effect (an exception to raise, or a callable)."""
    calls: list[int] = []

    class Summary:
        cycle_id, status, seen, decided = 0, "ok", 0, 0

    def fake(cfg: Config, store: Store, platform: Any, classifier: Any, *, mode: RunMode) -> Summary:
        calls.append(1)
        effect = effects.pop(0) if effects else None
        if isinstance(effect, Exception):
            raise effect
        if callable(effect):
            effect(store)
        return Summary()

    monkeypatch.setattr(daemon, "run_cycle", fake)
    return calls


def test_a_failing_cycle_is_logged_and_the_next_one_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(tmp_path, mode="review")
    cfg.schedule.interval_seconds = 1
    calls = fake_cycles(monkeypatch, [RuntimeError("photo host on fire"), None])
    with caplog.at_level(logging.ERROR, logger="bot.daemon"):
        assert run_daemon(cfg, max_cycles=2, platform=FakePlatform(), classifier=object(),
                          install_signals=False) == 0
    assert len(calls) == 2
    assert "photo host on fire" in caplog.text


def test_auto_daemon_posts_each_approved_decision_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path, mode="auto")
    cfg.schedule.interval_seconds = 1
    cfg.schedule.post_interval_seconds = 1

    def decide(oids: tuple[int, ...]):  # type: ignore[no-untyped-def]
        return lambda store: [add_decision(store, oid, status="approved", mode="auto") for oid in oids]

    fake_cycles(monkeypatch, [decide((1, 2)), decide((3,)), None])
    platform = BotPlatform()
    assert run_daemon(cfg, max_cycles=3, platform=platform, classifier=object(), install_signals=False) == 0
    assert sorted(w.observation_id for w in platform.writes) == [1, 2, 3]
    assert {w.token for w in platform.writes} == {"tok-bot"}
    store = Store(cfg.database_path)
    with store.session() as s:
        assert {p.status for p in s.scalars(select(PostRow))} == {"posted"}
        assert s.get(KeyValueRow, "token_refreshed_at") is not None
    store.close()


def test_auto_mode_refuses_to_start_without_opt_in(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, mode="auto", allow_unreviewed=False)
    with pytest.raises(UsageError, match="allow_unreviewed"):
        run_daemon(cfg, max_cycles=1, platform=BotPlatform(), classifier=object(), install_signals=False)


def test_sigterm_finishes_the_current_step_and_returns_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path, mode="review")
    finished: list[bool] = []

    def signalled_mid_cycle(store: Store) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        add_decision(store, 1)  # the step in progress still completes
        finished.append(True)

    calls = fake_cycles(monkeypatch, [signalled_mid_cycle])
    before = signal.getsignal(signal.SIGTERM)
    assert run_daemon(cfg, platform=FakePlatform(), classifier=object()) == 0
    assert finished == [True] and len(calls) == 1
    assert signal.getsignal(signal.SIGTERM) is before


def test_status_shows_last_cycle_queue_posts_errors_and_budget(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from bot.cli import main
    from bot.store.models import CycleRow
    from tests.post_fakes import now

    config = write_sim_config(tmp_path / "config.toml", api_url="http://127.0.0.1:9/v1", site_url="http://127.0.0.1:9",
                              state=tmp_path, sections={"posting": {"mode": "review"}})
    store = Store(tmp_path / "plantbot.sqlite3")
    with store.session() as s:
        s.add(CycleRow(started_at=now(), finished_at=now(), status="failed", seen=12, decided=9,
                       counts={"kind:species": 3}, timings={}, errors=["GET /v1/observations: HTTP 503"]))
    add_decision(store, 1, status="proposed")
    add_decision(store, 2, kind="genus", taxon_id=301, taxon_name="Rosa", status="proposed")
    failed = add_decision(store, 3, status="approved", mode="auto")
    with store.session() as s:
        s.add(PostRow(decision_id=failed, observation_id=3, model_version="1", action="post",
                      kind="identification", taxon_id=401, body="x", user_login="plantbot", mode="auto",
                      status="failed", error="HTTP 422 (Taxon is not valid)", attempts=1, created_at=now()))
    store.close()
    result = CliRunner().invoke(main, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["last_cycle"]["seen"] == 12 and doc["last_cycle"]["status"] == "failed"
    assert doc["queue"] == {"species": 1, "genus": 1}
    assert doc["posts"] == {"failed": 1}
    assert any("HTTP 503" in e for e in doc["errors_24h"]) and any("HTTP 422" in e for e in doc["errors_24h"])
    assert doc["budget"]["requests_last_24h"] == 0 and doc["budget"]["daily_cap"] == 9000
    text = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert text.exit_code == 0 and "review queue" in text.output and "HTTP 422" in text.output
