"""The daemon as a real process against the simulator: a crash mid-POST, the lock, SIGTERM.

The crash test is issue 3's: an auto-mode daemon is SIGKILLed while the simulator holds a POST open
after storing it; after a restart the simulator has exactly one identification per observation by
the bot, and the database marks it posted (found by reconciliation, not posted again).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from bot.store import Store
from bot.store.models import CycleRow, PostRow
from bot.store.posting import list_posts
from bot.store.records import list_decisions
from tests.post_world import BOT, POSTABLE, build_bundle, build_world, write_config

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120.0


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, protos = build_world()
    return build_bundle(tmp_path_factory.mktemp("bundle") / "bundle", protos)


def start_daemon(config: Path, log: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bot", "-v", "--config", str(config), "run", *extra],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"daemon exited ({proc.returncode}) before {what}:\n"
                        f"{log.read_text()[-3000:] if log else ''}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:] if log else ''}")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLANTBOT_", "INAT_"))}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


IDENT_PATH = {"inat-v1": "/v1/identifications", "legacy": "/identifications.json"}


@pytest.fixture(params=["inat-v1", "legacy"])
def flavor(request: pytest.FixtureRequest) -> str:
    """The crash-and-restart guarantee holds on both API flavors."""
    return str(request.param)


@pytest.fixture()
def held_sim(flavor: str) -> Iterator[SimServer]:
    world, _ = build_world()
    faults = FaultPlan([FaultRule(f"POST {IDENT_PATH[flavor]}", "hold", delay=300.0, times=1)])
    with SimServer(world, faults=faults) as server:
        yield server


def bot_identifications(sim: SimServer) -> dict[int, list[int]]:
    uid = next(u.id for u in sim.world.users.values() if u.login == BOT)
    with sim.lock:
        return {oid: [i.id for i in o.identifications if i.user_id == uid]
                for oid, o in sim.world.observations.items()}


def test_sigkill_while_the_post_is_held_then_restart_posts_exactly_once(held_sim: SimServer, bundle: Path,
                                                                         tmp_path: Path, flavor: str) -> None:
    sim = held_sim
    config = write_config(tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, bundle=bundle,
                          mode="auto", tmp=tmp_path, flavor=flavor)
    token = sim.issue_jwt(BOT) if flavor == "inat-v1" else sim.issue_access_token(BOT)
    env = child_env(PLANTBOT_API_TOKEN=token)
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, log, env)
    try:
        wait_for(lambda: any(bot_identifications(sim).values()), "the held POST to be stored", proc, log)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    [held_on] = [oid for oid, ids in bot_identifications(sim).items() if ids]
    assert [r.fault for r in sim.writes] == ["hold"]  # killed while the only write was held open
    store = Store(tmp_path / "plantbot.sqlite3")
    with store.session() as s:
        open_rows = {p.observation_id: p.status for p in s.scalars(select(PostRow))}
    assert open_rows == {held_on: "intent"}

    restart = start_daemon(config, log, env, "--max-cycles", "1")
    assert restart.wait(timeout=WAIT) == 0, log.read_text()[-3000:]

    idents = bot_identifications(sim)
    for oid, (kind, _) in POSTABLE.items():
        assert len(idents[oid]) == (1 if kind == "identification" else 0), (oid, idents)
    assert sum(len(v) for v in idents.values()) == 2
    with store.session() as s:
        posts = {p.observation_id: p for p in list_posts(s)}
        statuses = {d.observation_id: d.status for d in list_decisions(s)}
    store.close()
    assert set(posts) == set(POSTABLE)
    assert {p.status for p in posts.values()} == {"posted"}
    assert posts[held_on].remote_id == idents[held_on][0] and posts[held_on].attempts == 1
    assert all(statuses[oid] == "posted" for oid in POSTABLE)
    assert sum(r.path == IDENT_PATH[flavor] for r in sim.writes) == 2  # the held one was never resent
    assert "reconciled post" in log.read_text()


def test_second_daemon_refused_and_sigterm_exits_0(bundle: Path, tmp_path: Path) -> None:
    world, _ = build_world()
    with SimServer(world) as sim:
        config = write_config(tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, bundle=bundle,
                              mode="review", tmp=tmp_path)
        log = tmp_path / "daemon.log"
        first = start_daemon(config, log, child_env())
        try:
            wait_for(lambda: "daemon started" in log.read_text(), "the first daemon to start", first, log)
            second = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "run"], cwd=ROOT,
                                    env=child_env(), capture_output=True, text=True, timeout=WAIT)
            assert second.returncode == 1
            assert "another plantbot daemon is already running" in second.stderr
            assert f"pid {first.pid}" in second.stderr
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=WAIT) == 0, log.read_text()[-3000:]
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert "daemon stopped cleanly" in log.read_text()
    store = Store(tmp_path / "plantbot.sqlite3")
    with store.session() as s:
        assert all(c.status != "running" and c.finished_at is not None for c in s.scalars(select(CycleRow)))
    store.close()
