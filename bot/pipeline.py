"""The streaming photos -> classify stage of a cycle: downloads and inference overlap.

Download threads fetch, decode and preprocess each photo (network waits, libjpeg and the resize all
release the GIL) and put it on a bounded queue; the calling thread takes photos off the queue in
batches across observations and runs the model. A page therefore takes about the longer of its
downloads and its inference instead of their sum, and memory stays bounded by the queue (a few
batches of decoded photos) plus one photo per download thread, whatever the page size: a download
thread that finds the queue full waits.

What comes out is what the sequential stages produced: every PhotoResult per observation in
position order (their images dropped once preprocessed) and the probabilities averaged over each
observation's photos, so the cycle's decisions, ledger, cursor and attempt counting are unchanged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from bot import photos as photo_stage
from bot.config import Config
from bot.domain import Observation, ObservationPrediction, Photo, PhotoStatus
from bot.platforms.photo_host import PhotoHost

if TYPE_CHECKING:
    from bot.classifier import Classifier

log = logging.getLogger(__name__)

QUEUE_BATCHES = 2  # decoded photos waiting for the model, in batches
PUT_POLL_SECONDS = 0.1


@dataclass
class StreamResult:
    results: dict[int, list[photo_stage.PhotoResult]]  # by observation, position order, images dropped
    predictions: dict[int, ObservationPrediction | None]  # only observations with a photo that loaded
    classify_seconds: float = 0.0  # time the calling thread spent in the model (the rest is waiting)
    peak_queued: int = 0  # most decoded photos waiting at once (the memory bound, for tests and benches)
    errors: dict[tuple[int, int], str] = field(default_factory=dict)  # photos the classifier could not use


@dataclass
class _Item:
    index: int  # the job's position: results are put back in position order
    result: photo_stage.PhotoResult
    tensor: Any = None  # uint8 crops from Classifier.prepare
    error: str | None = None


class _Stop(Exception):
    """The consumer gave up (an error): producers stop instead of waiting on a full queue."""


class _Producer:
    """Runs in the download threads: fetch, decode, preprocess, then wait for room on the queue."""

    def __init__(self, fetch: Callable[[tuple[int, Photo]], photo_stage.PhotoResult], classifier: Classifier,
                 out: queue.Queue[_Item | BaseException], stop: threading.Event) -> None:
        self.fetch, self.classifier, self.out, self.stop = fetch, classifier, out, stop

    def __call__(self, index: int, job: tuple[int, Photo]) -> None:
        try:
            item = self._item(index, job)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(item)

    def _item(self, index: int, job: tuple[int, Photo]) -> _Item:
        if self.stop.is_set():
            raise _Stop()
        result = self.fetch(job)
        if result.status != PhotoStatus.OK or result.image is None:
            return _Item(index, result)
        try:
            tensor = self.classifier.prepare(result.image)
        except Exception as exc:  # noqa: BLE001 - one odd photo must not sink the page
            from bot.classifier.infer import photo_error

            return _Item(index, replace(result, image=None), error=photo_error(exc))
        return _Item(index, replace(result, image=None), tensor)

    def _put(self, item: _Item | BaseException) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=PUT_POLL_SECONDS)
                return
            except queue.Full:
                continue


class _Averages:
    """Per-observation sums of photo probabilities, as Classifier.predict_observations averages them."""

    def __init__(self) -> None:
        self.sums: dict[int, np.ndarray] = {}
        self.counts: dict[int, int] = {}

    def add(self, obs_id: int, probs: np.ndarray) -> None:
        if obs_id in self.sums:
            self.sums[obs_id] += probs
            self.counts[obs_id] += 1
        else:
            self.sums[obs_id] = probs.copy()
            self.counts[obs_id] = 1

    def predictions(self) -> dict[int, ObservationPrediction | None]:
        return {o: ObservationPrediction(o, tuple(float(p) for p in s / self.counts[o]), self.counts[o])
                for o, s in self.sums.items()}


def stream_classify(observations: Sequence[Observation], cfg: Config, classifier: Classifier, *,
                    media_budget: photo_stage.MediaBudget | None = None, host: PhotoHost | None = None,
                    resolver: Callable[[str], list[str]] | None = None) -> StreamResult:
    """Downloads every photo of `observations` while classifying those already in (see the module doc)."""
    jobs = photo_stage.photo_jobs(observations, cfg)
    per_batch = max(1, classifier.batch_size // classifier.crops)
    out: queue.Queue[_Item | BaseException] = queue.Queue(maxsize=QUEUE_BATCHES * per_batch)
    stop = threading.Event()
    http = host if host is not None else PhotoHost(cfg)
    fetch = photo_stage.make_fetcher(cfg, http, decode_size=classifier.bundle.resize_size, resolver=resolver,
                                     media_budget=media_budget)
    pool = ThreadPoolExecutor(max_workers=max(1, min(cfg.photos.parallel, len(jobs) or 1)),
                              thread_name_prefix="photo")
    try:
        produce = _Producer(fetch, classifier, out, stop)
        for index, job in enumerate(jobs):
            pool.submit(produce, index, job)
        return _consume(out, len(jobs), classifier, per_batch, observations)
    finally:
        stop.set()  # on an error: producers stop waiting for room and skip the jobs not started
        pool.shutdown(wait=True, cancel_futures=True)
        if host is None:
            http.close()


def _consume(out: queue.Queue[_Item | BaseException], total: int, classifier: Classifier, per_batch: int,
             observations: Sequence[Observation]) -> StreamResult:
    """The calling thread: batches photos off the queue as they arrive and runs the model on them."""
    placed: dict[int, list[tuple[int, photo_stage.PhotoResult]]] = {o.id: [] for o in observations}
    averages = _Averages()
    stream = StreamResult(results={}, predictions={})
    batch: list[_Item] = []

    def flush() -> None:
        started = time.perf_counter()
        probs = classifier.classify_prepared([item.tensor for item in batch])
        stream.classify_seconds += time.perf_counter() - started
        for item, row in zip(batch, probs, strict=True):
            averages.add(item.result.observation_id, row)
        batch.clear()

    for _ in range(total):
        stream.peak_queued = max(stream.peak_queued, out.qsize())
        item = out.get()
        if isinstance(item, BaseException):
            raise item
        placed[item.result.observation_id].append((item.index, item.result))
        if item.error is not None:
            stream.errors[(item.result.observation_id, item.result.photo.id)] = item.error
            log.info("photo %s of observation %s could not be classified: %s", item.result.photo.id,
                     item.result.observation_id, item.error)
        elif item.tensor is not None:
            batch.append(item)
            if len(batch) >= per_batch:
                flush()
    if batch:
        flush()
    stream.results = {o: [r for _, r in sorted(rs, key=lambda p: p[0])] for o, rs in placed.items()}
    stream.predictions = averages.predictions()
    return stream
