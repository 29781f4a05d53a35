"""One poll cycle: poll -> photos -> classify -> decide -> record.

Pages are processed one at a time and the cursor moves only after a page's observations are in
the database, so a crash or an API failure loses nothing: observations seen but not decided are
picked up again by the next cycle (up to `MAX_ATTEMPTS` tries when their photos keep failing).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.config import Config
from bot.decide import NO_LOADABLE_PHOTO, decide, skip_before_inference, with_bundle_cutoffs
from bot.domain import (
    CycleStatus,
    Decision,
    DecisionKind,
    DecisionStatus,
    Observation,
    ObservationPrediction,
    PhotoStatus,
    RunMode,
)
from bot.errors import BudgetExhausted, PlatformError
from bot.flora import apply_flora
from bot.flora_cache import load_flora
from bot.photos import MediaBudget
from bot.pipeline import stream_classify
from bot.start import ensure_cursor
from bot.store import records
from bot.store.db import Store
from bot.store.media import StoreMediaLedger

if TYPE_CHECKING:
    from bot.classifier import Classifier
    from bot.platforms.base import Platform, Rejected

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
TRANSIENT_PHOTO_STATUSES = frozenset({PhotoStatus.FAILED})
REFETCH_BATCH = 30


@dataclass
class CycleSummary:
    cycle_id: int = 0
    dry_run: bool = True
    mode: RunMode = RunMode.DRY_RUN
    dtype: str = ""  # the classifier's precision (float32, bfloat16...), also stored with the cycle
    seen: int = 0
    retried: int = 0
    decided: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    photos_ok: int = 0
    photos_failed: int = 0
    rejected: int = 0
    left_for_next: int = 0
    errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    paused: str | None = None

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    @property
    def status(self) -> CycleStatus:
        if self.paused:
            return CycleStatus.PAUSED
        return CycleStatus.FAILED if self.errors else CycleStatus.OK


def decision_status(kind: DecisionKind, mode: RunMode) -> DecisionStatus:
    """Where a new decision enters the review flow: only proposals can ever be posted."""
    if mode.dry_run or not kind.proposes:
        return DecisionStatus.RECORDED
    return DecisionStatus.APPROVED if mode is RunMode.AUTO else DecisionStatus.PROPOSED


def next_cursor(cursor: int, stored_ids: Sequence[int]) -> int:
    """The cursor after a page: the highest id that was stored, never past one that was not.

    The page's own `last_id` is not trusted: a bogus or refused id (a huge one, one the store cannot
    hold) must never carry the cursor past the real observations still to come.
    """
    return max([cursor, *stored_ids])


def cursor_key(cfg: Config, platform: Platform) -> str:
    p = cfg.platform
    filters = f"place={p.place_id};project={p.project_id};quality={p.quality_grade};site={p.site_id}"
    return f"{platform.name}|{filters}"


class CycleRunner:
    """Carries the collaborators of one cycle so the stage functions stay short."""

    def __init__(self, cfg: Config, store: Store, platform: Platform, classifier: Classifier,
                 mode: RunMode) -> None:
        self.cfg, self.store, self.platform, self.classifier = cfg, store, platform, classifier
        self.bundle = classifier.bundle
        self.mode = mode
        self.decision_cfg = with_bundle_cutoffs(cfg.decision, self.bundle.cutoffs)
        self.logins = [x for x in (cfg.posting.account_login, *cfg.review.moderators) if x]
        self.summary = CycleSummary(dry_run=mode.dry_run, mode=mode, dtype=classifier.dtype_name)
        self.media_budget = MediaBudget.from_config(cfg, StoreMediaLedger(store))
        self.flora = load_flora(cfg, store)

    def run(self) -> CycleSummary:
        s = self.summary
        with self.store.session() as db:
            s.cycle_id = records.start_cycle(db, self.mode.dry_run, dtype=s.dtype)
        log.info("cycle %d: classifier %s on %s", s.cycle_id, s.dtype, self.classifier.device)
        try:
            self._retry_left_over()
            self._poll_new()
        except BudgetExhausted as exc:
            s.paused = str(exc)
            log.warning("polling paused: %s", exc)
        except PlatformError as exc:
            s.errors.append(str(exc))
            log.error("cycle stopped early, the rest is left for the next cycle: %s", exc)
        except Exception as exc:  # recorded as a failed cycle, then raised for the caller to log
            s.errors.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._finish()
        return s

    def _retry_left_over(self) -> None:
        with self.store.session() as db:
            ids = records.undecided_ids(db, self.platform.name, MAX_ATTEMPTS)
        for start in range(0, len(ids), REFETCH_BATCH):
            batch = ids[start:start + REFETCH_BATCH]
            try:
                with self.summary.timed("poll"):
                    found = self.platform.get_observations(batch)
            except BudgetExhausted:
                raise
            except PlatformError as exc:  # these wait for a later cycle; polling new ones goes on
                self.summary.errors.append(f"re-reading {len(batch)} observations: {exc}")
                with self.store.session() as db:
                    for oid in batch:
                        self._attempt_failed(db, oid, str(exc))
                continue
            self.summary.retried += len(found)
            with self.store.session() as db:
                records.upsert_observations(db, found, self.platform.name)
                for gone in sorted(set(batch) - {o.id for o in found}):
                    self._attempt_failed(db, gone, "no longer returned by the platform (deleted or unreadable)")
            self._process(found)

    def _attempt_failed(self, db: Session, observation_id: int, error: str) -> None:
        """Counts a failed try; the last one records a skip, so every observation ends with a decision."""
        if records.note_attempt(db, observation_id, error) >= MAX_ATTEMPTS:
            self._store_decision(db, Decision(observation_id, DecisionKind.SKIP,
                                              reasons=(f"gave up after {MAX_ATTEMPTS} tries: {error}",)))

    def _poll_new(self) -> None:
        key = cursor_key(self.cfg, self.platform)
        cursor = ensure_cursor(self.cfg, self.store, self.platform, key)
        pages = self.platform.get_new_observations(cursor)
        while True:
            with self.summary.timed("poll"):
                page = next(pages, None)
            if page is None:
                return
            self.summary.seen += len(page.observations) + len(page.rejected)
            with self.store.session() as db:
                records.upsert_observations(db, page.observations, self.platform.name)
                self._record_rejected(db, page.rejected)
                stored = [o.id for o in page.observations] + [r.observation_id for r in page.rejected
                                                              if r.observation_id is not None]
                cursor = next_cursor(cursor, stored)
                records.set_cursor(db, key, cursor)
            self._process(page.observations)

    def _record_rejected(self, db: Session, rejected: Sequence[Rejected]) -> None:
        for r in rejected:
            self.summary.rejected += 1
            raw = r.raw_id or ("none" if r.observation_id is None else str(r.observation_id))
            log.warning("observation %s rejected: %s", raw, r.reason)
            records.record_rejected_entry(db, self.platform.name, raw, r.reason, self.summary.cycle_id)
            if r.observation_id is not None:
                records.record_rejected(db, r.observation_id, self.platform.name, r.reason)
                self._store_decision(db, Decision(r.observation_id, DecisionKind.SKIP,
                                                  reasons=(f"unparseable: {r.reason}",)))

    def _process(self, observations: Sequence[Observation]) -> None:
        with self.store.session() as db:
            done = records.decided_ids(db, [o.id for o in observations], self.bundle.name, self.bundle.version)
        todo: list[Observation] = []
        with self.store.session() as db:
            for obs in observations:
                if obs.id in done:
                    continue
                reason = skip_before_inference(obs, self.cfg.decision, self.logins)
                if reason:
                    self._store_decision(db, Decision(obs.id, DecisionKind.SKIP, reasons=(reason,)))
                else:
                    todo.append(obs)
        if todo:
            self._classify_and_decide(todo)

    def _classify_and_decide(self, todo: list[Observation]) -> None:
        s = self.summary
        with s.timed("photos+classify"):  # overlapped: downloads feed the model (bot/pipeline.py)
            streamed = stream_classify(todo, self.cfg, self.classifier, media_budget=self.media_budget)
        s.timings["classify"] = s.timings.get("classify", 0.0) + streamed.classify_seconds
        results, predictions = streamed.results, streamed.predictions
        retry_later: set[int] = set()
        budget_spent: str | None = None
        with self.store.session() as db:
            for obs in todo:
                obs_results = results.get(obs.id, [])
                for r in obs_results:
                    records.record_photo_result(db, obs.id, r.photo.id, r.status, r.error, r.nbytes, r.url)
                    s.photos_ok += r.status == PhotoStatus.OK
                    s.photos_failed += r.status != PhotoStatus.OK
                loaded = any(r.status == PhotoStatus.OK for r in obs_results)
                over_budget = next((r.error for r in obs_results if r.status == PhotoStatus.BUDGET), None)
                if over_budget:  # not the observation's fault: wait for the budget, count no attempt
                    budget_spent = budget_spent or over_budget
                    retry_later.add(obs.id)
                elif loaded:
                    continue
                elif any(r.status in TRANSIENT_PHOTO_STATUSES for r in obs_results):
                    attempts = records.note_attempt(db, obs.id, "photos could not be downloaded")
                    if attempts < MAX_ATTEMPTS:
                        retry_later.add(obs.id)
        with s.timed("decide"), self.store.session() as db:
            for obs in todo:
                if obs.id in retry_later:
                    s.left_for_next += 1
                    continue
                decision = self._decide(obs, predictions.get(obs.id))
                if decision.reasons == (NO_LOADABLE_PHOTO,):
                    errors = "; ".join(r.error or r.status for r in results.get(obs.id, []))
                    decision = replace(decision, reasons=(NO_LOADABLE_PHOTO, errors))
                self._store_decision(db, decision)
        if budget_spent:
            raise BudgetExhausted(budget_spent)  # stop polling: new observations would only wait too

    def _decide(self, obs: Observation, prediction: ObservationPrediction | None) -> Decision:
        """The rule, on probabilities weighted by the local flora first when one is configured."""
        d = self.decision_cfg
        if self.flora is None or prediction is None or not prediction.n_photos:
            return decide(prediction, self.bundle.labels, obs, d, self.logins)
        weighted = apply_flora(prediction.probs, self.bundle.labels, self.flora.taxon_ids, weight=d.flora_weight,
                               renormalise=d.flora_renormalise, top_k=d.top_k)
        decision = decide(replace(prediction, probs=weighted.probs), self.bundle.labels, obs, d, self.logins)
        return replace(decision, flora=self.flora.source, flora_name=self.flora.place_name,
                       flora_removed=weighted.removed)

    def _store_decision(self, db: Session, decision: Decision) -> None:
        decision_id = records.record_decision(
            db, decision, model_name=self.bundle.name, model_version=self.bundle.version,
            cutoff=self.decision_cfg.cutoff if decision.cutoff is None else decision.cutoff,
            mode=self.mode, dry_run=self.mode.dry_run,
            status=decision_status(decision.kind, self.mode), cycle_id=self.summary.cycle_id,
            temperature=self.bundle.temperature)
        if decision_id is None:
            return
        self.summary.decided += 1
        self.summary.kinds[decision.kind.value] += 1
        if decision.kind is DecisionKind.SKIP:
            self.summary.skipped[decision.reasons[0] if decision.reasons else "unknown"] += 1

    def _finish(self) -> None:
        s = self.summary
        counts = {**{f"kind:{k}": v for k, v in s.kinds.items()}, **{f"skip:{k}": v for k, v in s.skipped.items()},
                  "rejected": s.rejected, "left_for_next": s.left_for_next, "retried": s.retried}
        if s.paused:
            s.errors.append(f"paused: {s.paused}")
        with self.store.session() as db:
            records.finish_cycle(db, s.cycle_id, status=s.status, seen=s.seen, decided=s.decided,
                                 photos_failed=s.photos_failed, counts=counts,
                                 timings={k: round(v, 3) for k, v in s.timings.items()}, errors=s.errors)


def run_cycle(cfg: Config, store: Store, platform: Platform, classifier: Classifier | None = None, *,
              mode: RunMode | None = None) -> CycleSummary:
    """Runs one cycle in `mode` (None: the configured `[posting] mode`)."""
    if classifier is None:
        from bot.classifier import Classifier

        classifier = Classifier.from_config(cfg)
    return CycleRunner(cfg, store, platform, classifier, mode or RunMode.of(cfg.posting.mode)).run()
