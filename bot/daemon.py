"""`plantbot run`: the long-running daemon (APScheduler wiring, signals, the single-instance lock).

Jobs are plain module-level functions with explicit ids, `max_instances=1` and `coalesce=True`, run
one at a time on a single worker thread (the poll cycle and the posting round share the platform's
rate limiter and the database, so running them side by side would gain nothing).  Each job catches
and logs its own failure, so one bad run never stops the next.  SIGTERM/SIGINT stop the scheduler
with `shutdown(wait=True)`: the step in progress finishes (every database write is a transaction), so
no half-written row is left, and the process exits 0.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from bot.config import Config, Secrets
from bot.domain import RunMode
from bot.errors import PlantBotError
from bot.platforms.base import Platform
from bot.post import auto_post_round, check_mode_allowed, reconcile_open_intents
from bot.store import Store
from bot.store import posting as q
from bot.texts import check_templates

if TYPE_CHECKING:
    from bot.classifier import Classifier
    from bot.cycle import CycleSummary

log = logging.getLogger(__name__)

POLL_JOB, POST_JOB, TOKEN_JOB, AUDIT_JOB = "poll", "post", "token-refresh", "audit-refresh"
FLORA_JOB = "flora-refresh"
AUDIT_BATCH = 300  # observations re-read per audit run: 10 requests, well inside the daily budget


class AlreadyRunning(PlantBotError):
    """Another daemon holds this database's lock."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextmanager
def instance_lock(database: Path) -> Iterator[Path]:
    """One daemon per database: an exclusive `flock` on `<database>.lock`, freed by the kernel on any exit."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the daemon's life
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise AlreadyRunning(f"another plantbot daemon is already running on {database} "
                                 f"(pid {pid}, lock {path}); stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
    finally:
        handle.close()


@dataclass
class DaemonContext:
    """What the jobs share; only the scheduler's single worker thread touches it while running."""

    cfg: Config
    store: Store
    platform: Platform
    classifier: Classifier
    mode: RunMode
    max_cycles: int | None = None
    cycles: int = 0
    token: str | None = None
    user_login: str | None = None
    scheduler: BlockingScheduler | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    _stopper: threading.Thread | None = None

    @property
    def dry_run(self) -> bool:
        return self.mode.dry_run

    @property
    def posts(self) -> bool:
        """Auto mode: the daemon itself posts, under the bot's account."""
        return self.mode is RunMode.AUTO

    def refresh_token(self) -> str:
        """The bot account's token (auto mode), fresh from the adapter; remembered for the next round."""
        self.token = self.platform.get_token()
        if not self.user_login:
            self.user_login = self.cfg.posting.account_login or self.platform.get_current_user(self.token).login
        with self.store.session() as s:
            q.set_value(s, "token_refreshed_at", q.utcnow().isoformat(timespec="seconds"))
        return self.token

    def request_stop(self, why: str) -> None:
        """Stops the scheduler from a helper thread, so a job (or a signal handler) never waits on itself."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        log.info("stopping: %s", why)
        abort = getattr(self.platform, "abort", None)
        if abort is not None:  # a request under way (a slow or dripping server) must not hold the stop up
            abort()
        if self.scheduler is not None:
            self._stopper = threading.Thread(target=_shutdown, args=(self.scheduler,), name="plantbot-stop")
            self._stopper.start()

    def join_stopper(self) -> None:
        if self._stopper is not None:
            self._stopper.join()


def _shutdown(scheduler: BlockingScheduler, attempts: int = 50) -> None:
    """`shutdown(wait=True)`; a signal that lands just before `start()` is retried until it can stop it."""
    for _ in range(attempts):
        try:
            scheduler.shutdown(wait=True)
            return
        except SchedulerNotRunningError:
            time.sleep(0.1)


# --- jobs (module-level, explicit ids) ----------------------------------------------------------

def run_cycle(cfg: Config, store: Store, platform: Platform, classifier: Classifier, *,
              mode: RunMode) -> CycleSummary:
    """`bot.cycle.run_cycle`, imported on first use so `bot.daemon` loads without the pipeline's imports."""
    from bot.cycle import run_cycle as cycle

    return cycle(cfg, store, platform, classifier, mode=mode)


def poll_job(ctx: DaemonContext) -> None:
    """One poll cycle; after `max_cycles` (a testing hook) a last posting round, then stop."""
    if ctx.stopping.is_set():
        return
    try:
        summary = run_cycle(ctx.cfg, ctx.store, ctx.platform, ctx.classifier, mode=ctx.mode)
        log.info("cycle %s: %s, %s seen, %s decided", summary.cycle_id, summary.status, summary.seen,
                 summary.decided)
    except Exception:
        log.exception("poll cycle failed; the next one runs as scheduled")
    ctx.cycles += 1
    if ctx.max_cycles is not None and ctx.cycles >= ctx.max_cycles:
        if ctx.posts:
            post_job(ctx)
        ctx.request_stop(f"{ctx.cycles} cycle(s) done")


def post_job(ctx: DaemonContext) -> None:
    """Settles open intents; in auto mode, then posts the approved decisions under the bot's account."""
    if ctx.stopping.is_set():
        return
    try:
        if not ctx.posts:
            reconcile_open_intents(ctx.store, ctx.platform, ctx.cfg)
            return
        token = ctx.token or ctx.refresh_token()
        outcomes = auto_post_round(ctx.store, ctx.platform, ctx.cfg, mode=ctx.mode, token=token,
                                   user_login=ctx.user_login or "", token_provider=ctx.refresh_token)
        if outcomes:
            counts: dict[str, int] = {}
            for o in outcomes:
                counts[o.status] = counts.get(o.status, 0) + 1
            log.info("posting round: %s", ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    except Exception:
        log.exception("posting round failed; the next one runs as scheduled")


def token_job(ctx: DaemonContext) -> None:
    """Refreshes the bot's token ahead of expiry (iNaturalist JWTs last 24 h)."""
    if ctx.stopping.is_set():
        return
    try:
        ctx.refresh_token()
    except Exception:
        log.exception("token refresh failed; the posting round will try again")


def audit_job(ctx: DaemonContext) -> None:
    """Re-reads posted (and would-be) suggestions so the audit report knows what the community made of them."""
    if ctx.stopping.is_set():
        return
    try:
        from bot.report.outcomes import refresh_outcomes

        counts = refresh_outcomes(ctx.store, ctx.platform, ctx.cfg, limit=AUDIT_BATCH)
        log.info("audit refresh: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    except Exception:
        log.exception("audit refresh failed; the next one runs as scheduled")


def flora_job(ctx: DaemonContext, *, only_if_stale: bool = False) -> None:
    """Re-reads the place's flora (weekly by default); a failure keeps the last good list."""
    if ctx.stopping.is_set():
        return
    try:
        from bot.flora_cache import refresh_flora, refresh_if_stale

        refresh = refresh_if_stale if only_if_stale else refresh_flora
        refresh(ctx.cfg, ctx.store, ctx.platform)
    except Exception:
        log.exception("flora refresh failed; the last list stays in use")


# --- wiring ------------------------------------------------------------------------------------

def build_scheduler(ctx: DaemonContext) -> BlockingScheduler:
    scheduler = BlockingScheduler(executors={"default": ThreadPoolExecutor(max_workers=1)},
                                  job_defaults={"max_instances": 1, "coalesce": True,
                                                "misfire_grace_time": None})
    sched = ctx.cfg.schedule
    now = datetime.now().astimezone()
    scheduler.add_job(poll_job, "interval", args=[ctx], id=POLL_JOB, name="poll cycle",
                      seconds=sched.interval_seconds, next_run_time=now, max_instances=1, coalesce=True)
    if not ctx.dry_run:
        scheduler.add_job(post_job, "interval", args=[ctx], id=POST_JOB, name="posting round",
                          seconds=sched.post_interval_seconds,
                          next_run_time=now + timedelta(seconds=sched.post_interval_seconds),
                          max_instances=1, coalesce=True)
    scheduler.add_job(audit_job, "interval", args=[ctx], id=AUDIT_JOB, name="audit refresh",
                      seconds=sched.audit_interval_seconds, max_instances=1, coalesce=True)
    if ctx.cfg.decision.flora == "place":
        scheduler.add_job(flora_job, "interval", args=[ctx], id=FLORA_JOB, name="flora refresh",
                          seconds=sched.flora_refresh_seconds, max_instances=1, coalesce=True)
    if ctx.posts:
        scheduler.add_job(token_job, "interval", args=[ctx], id=TOKEN_JOB, name="token refresh",
                          seconds=sched.token_refresh_seconds, max_instances=1, coalesce=True)
    return scheduler


def _install_signals(ctx: DaemonContext) -> dict[int, Any]:
    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if ctx.stopping.is_set():
            log.warning("%s again: exiting now (open intents are reconciled at the next start)", name)
            os._exit(1)
        ctx.request_stop(f"{name} received")

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    return previous


def run_daemon(cfg: Config, *, mode: RunMode | None = None, max_cycles: int | None = None,
               platform: Platform | None = None, classifier: Classifier | None = None,
               install_signals: bool = True) -> int:
    """Runs until a signal (or `max_cycles` poll cycles); returns the exit status (0 on a clean stop).

    `mode` is the CLI's (config plus `--dry-run`); None means the configured `[posting] mode`.
    """
    mode = mode or RunMode.of(cfg.posting.mode)
    if not mode.dry_run:
        check_mode_allowed(cfg)
        check_templates(cfg)
    database = cfg.database_path
    with instance_lock(database):
        if classifier is None:
            from bot.classifier import Classifier

            classifier = Classifier.from_config(cfg)
        store = Store(database)
        owned = None
        try:
            if platform is None:
                from bot.platforms import create_platform

                platform = owned = create_platform(cfg, Secrets.from_env(), dry_run=mode.dry_run)
            ctx = DaemonContext(cfg=cfg, store=store, platform=platform, classifier=classifier, mode=mode,
                                max_cycles=max_cycles)
            return _serve(ctx, install_signals)
        finally:
            if owned is not None:
                owned.close()
            store.close()


def _serve(ctx: DaemonContext, install_signals: bool) -> int:
    if ctx.posts:
        ctx.refresh_token()  # fail at start, with one line, rather than in every round
    if not ctx.dry_run:
        settled = reconcile_open_intents(ctx.store, ctx.platform, ctx.cfg)
        if settled:
            log.info("start-up: reconciled %s open intent(s)", settled)
    flora_job(ctx, only_if_stale=True)  # before the first cycle, which applies it
    ctx.scheduler = build_scheduler(ctx)
    previous = _install_signals(ctx) if install_signals else {}
    log.info("daemon started: mode %s%s, poll every %ss", ctx.cfg.posting.mode, " (dry-run)" if ctx.dry_run else "",
             ctx.cfg.schedule.interval_seconds)
    try:
        if not ctx.stopping.is_set():
            ctx.scheduler.start()
        ctx.join_stopper()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    log.info("daemon stopped cleanly")
    return 0
