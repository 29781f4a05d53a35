"""The streaming photos -> classify stage: the same answers as the sequential stages, in bounded memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import torch

from bot.classifier import Classifier, build_model, save_bundle
from bot.classifier.bundle import ModelBundle
from bot.config import Config
from bot.domain import Observation, Photo, User
from bot.photos import download_photos
from bot.pipeline import QUEUE_BATCHES, stream_classify
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world


@pytest.fixture(scope="module")
def world_and_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=24,
                                          photos_per_observation=(1, 3), photo_size=(64, 48), seed=7))
    labels = labels_for(species)
    bundle = save_bundle(tmp_path_factory.mktemp("b") / "bundle", name="tiny", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=36)
    return world, bundle


@pytest.fixture
def sim(world_and_bundle) -> Iterator[SimServer]:  # type: ignore[no-untyped-def]
    with SimServer(world_and_bundle[0]) as server:
        yield server


def observations(sim: SimServer) -> list[Observation]:
    """Every observation of the world as the platform layer would hand it over (photos in position order)."""
    return [Observation(id=o.id, user=User(1, "u"), iconic_taxon_name="Plantae",
                        photos=tuple(Photo(id=p, url=f"{sim.url}/photos/{p}/original.jpg", position=i)
                                     for i, p in enumerate(o.photo_ids)))
            for o in sorted(sim.world.observations.values(), key=lambda o: o.id)]


def config(**photos: object) -> Config:
    cfg = Config()
    cfg.platform.photo_hosts = ["127.0.0.1"]
    cfg.photos.timeout_seconds = 5.0
    for key, value in photos.items():
        setattr(cfg.photos, key, value)
    return cfg


def test_streaming_gives_the_sequential_results(sim: SimServer, world_and_bundle) -> None:  # type: ignore[no-untyped-def]
    bundle: ModelBundle = world_and_bundle[1]
    obs = observations(sim)
    clf = Classifier(bundle, device="cpu", threads=1, batch_size=4)
    streamed = stream_classify(obs, config(parallel=4), clf)
    sequential = download_photos(obs, config(parallel=4), decode_size=bundle.resize_size)
    images = {o: [r.image for r in rs if r.image is not None] for o, rs in sequential.items()}
    expected = clf.predict_observations({o: v for o, v in images.items() if v})
    assert set(streamed.results) == {o.id for o in obs}
    for o in obs:
        got = streamed.results[o.id]
        assert [r.photo.id for r in got] == [p.id for p in o.photos]  # position order, whatever finished first
        assert all(r.status == "ok" and r.image is None for r in got)  # pixels are not kept once classified
        assert [(r.status, r.nbytes) for r in got] == [(r.status, r.nbytes) for r in sequential[o.id]]
        pred, want = streamed.predictions[o.id], expected[o.id]
        assert pred is not None and want is not None and pred.n_photos == want.n_photos == len(o.photos)
        assert np.allclose(pred.probs, want.probs, atol=1e-5)  # batches mix observations differently
    assert streamed.classify_seconds > 0


def test_failed_photos_are_reported_and_the_rest_still_classified(sim: SimServer, world_and_bundle) -> None:  # type: ignore[no-untyped-def]
    bundle = world_and_bundle[1]
    obs = observations(sim)
    first = obs[0].photos[0].id
    sim.faults = FaultPlan([FaultRule(f"GET /photos/{first}/*", "status", status=503)])
    streamed = stream_classify(obs, config(parallel=3), Classifier(bundle, device="cpu", threads=1, batch_size=4))
    assert streamed.results[obs[0].id][0].status == "failed"
    if len(obs[0].photos) == 1:
        assert obs[0].id not in streamed.predictions
    else:
        assert streamed.predictions[obs[0].id].n_photos == len(obs[0].photos) - 1  # type: ignore[union-attr]
    assert all(streamed.predictions[o.id] is not None for o in obs[1:])


class SlowClassifier(Classifier):
    """A model slower than the downloads, counting the decoded photos alive at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lock = threading.Lock()
        self.alive = self.peak = 0
        self.fail_after: int | None = None
        self.calls = 0

    def prepare(self, item):  # type: ignore[no-untyped-def]
        out = super().prepare(item)
        with self.lock:
            self.alive += 1
            self.peak = max(self.peak, self.alive)
        return out

    def classify_prepared(self, tensors: Sequence[torch.Tensor]) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the model broke")
        time.sleep(0.05)
        out = super().classify_prepared(tensors)
        with self.lock:
            self.alive -= len(tensors)
        return out


def test_decoded_photos_in_flight_stay_bounded_whatever_the_page_size(sim: SimServer, world_and_bundle) -> None:  # type: ignore[no-untyped-def]
    bundle = world_and_bundle[1]
    obs = observations(sim) * 3  # a long page: ~150 photos
    parallel, batch = 4, 2
    clf = SlowClassifier(bundle, device="cpu", threads=1, batch_size=batch)
    streamed = stream_classify(obs, config(parallel=parallel), clf)
    n_photos = sum(len(o.photos) for o in obs)
    assert sum(p.n_photos for p in streamed.predictions.values() if p) == n_photos  # every photo classified
    # the queue, one photo per download thread, the batch being assembled: never the whole page
    bound = QUEUE_BATCHES * batch + parallel + batch
    assert clf.peak <= bound < n_photos // 4
    assert streamed.peak_queued <= QUEUE_BATCHES * batch


def test_a_model_failure_stops_the_downloads_and_is_raised(sim: SimServer, world_and_bundle) -> None:  # type: ignore[no-untyped-def]
    bundle = world_and_bundle[1]
    obs = observations(sim) * 3
    clf = SlowClassifier(bundle, device="cpu", threads=1, batch_size=2)
    clf.fail_after = 2
    before = len(sim.requests)
    with pytest.raises(RuntimeError, match="the model broke"):
        stream_classify(obs, config(parallel=2), clf)
    fetched = len(sim.requests) - before
    assert fetched < sum(len(o.photos) for o in obs) // 2  # the rest of the page was never downloaded
    assert not [t for t in threading.enumerate() if t.name.startswith("photo")]  # no thread left behind
