"""Batched inference: photos of many observations share a batch, and decoding overlaps the forward pass.

Worker threads decode and preprocess the next photos (Pillow and torch both release the GIL) while
the calling thread runs the model on the current batch; a bounded look-ahead keeps memory flat.
The probabilities do not depend on how photos were batched: `reference_predict` is the plain
one-photo-at-a-time definition the tests compare against.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import PIL.Image
import torch
from torchvision.transforms import v2

from bot.classifier import tensor_decode
from bot.classifier.bundle import ModelBundle, build_model, check_state_dict, load_bundle, read_weights
from bot.classifier.calibration import photo_probabilities, probabilities
from bot.classifier.precision import CHOICES, DTYPES, resolve_dtype
from bot.config import Config, check_model_path
from bot.domain import ObservationPrediction
from bot.errors import BundleError
from bot.imaging import ImageDecodeError, decode_image

log = logging.getLogger(__name__)

PhotoInput = PIL.Image.Image | bytes


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise BundleError(f"device {device!r} is not valid: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BundleError(f"device {device!r} asked for but CUDA is not available")
    return dev


def photo_error(exc: BaseException) -> str:
    """One line for a photo that could not be used (ImageDecodeError messages are already fit for users)."""
    text = " ".join(str(exc).split()) or "no detail"
    return text if isinstance(exc, ImageDecodeError) else f"{type(exc).__name__}: {text}"


def make_transform(bundle: ModelBundle, tencrop: bool = False) -> v2.Compose:
    """Shorter side to resize_size (aspect kept), centre crop (or ten crops), float, normalise."""
    return v2.Compose([_geometry(bundle, tencrop), _normalization(bundle)])


def _geometry(bundle: ModelBundle, tencrop: bool) -> v2.Compose:
    """The per-photo part, done in worker threads: resize, crop, to a uint8 tensor."""
    crop: v2.Transform = v2.TenCrop(bundle.input_size) if tencrop else v2.CenterCrop(bundle.input_size)
    return v2.Compose([v2.Resize(bundle.resize_size, antialias=True), crop, v2.ToImage()])


def _normalization(bundle: ModelBundle) -> v2.Compose:
    """The elementwise part, done per batch on the device (uint8 crosses to a GPU at a quarter the size)."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(bundle.mean), list(bundle.std))])


def decode_photo(data: bytes, bundle: ModelBundle) -> PIL.Image.Image:
    """Decodes photo bytes exactly as the classifier does (libjpeg draft down to resize_size)."""
    return decode_image(data, draft_size=bundle.resize_size)


def load_model(bundle: ModelBundle, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The bundle's network with its weights loaded strictly, in eval mode, on `device`."""
    state = read_weights(bundle.weights_path)
    check_state_dict(state, bundle.arch, bundle.num_classes, bundle.weights_path)
    # Built on the meta device, the weights then assigned: no time wasted on a random initialisation.
    with torch.device("meta"):
        model = build_model(bundle.arch, bundle.num_classes)
    try:
        model.load_state_dict(state, strict=True, assign=True)
        if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
            model = build_model(bundle.arch, bundle.num_classes)  # a non-persistent buffer: init for real
            model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BundleError(f"{bundle.weights_path}: weights do not load into {bundle.arch}: {first}") from None
    return model.to(device).eval()


class Classifier:
    """Turns photos (PIL images or encoded bytes) into softmax probabilities, averaged per observation.

    On CPU, constructing one sets torch's process-wide intra-op thread count (`threads`, 0 = all cores;
    use 1 on a machine shared with other busy processes: OpenMP barriers stall under contention).
    `decode="torchvision"` decodes JPEGs with torchvision on the device (nvjpeg on CUDA) instead of
    Pillow in `workers` threads. One instance serves one call at a time (`last_errors` is per call).
    `dtype` "auto" picks bfloat16 autocast on a CPU with native bf16 (see `precision`); `dtype_name`
    says what was chosen, and `cpu_flags` replaces the machine's CPU flags (tests).
    """

    @classmethod
    def from_config(cls, cfg: Config) -> Classifier:
        """The classifier `[model]` describes: the one way the CLI, the cycle and the daemon build it.

        A missing model path is a config error reported against `[model] path`, not a traceback.
        """
        m = cfg.model
        return cls(load_bundle(check_model_path(cfg)), device=m.device, batch_size=m.batch_size, threads=m.threads,
                   workers=m.workers, dtype=m.dtype, tencrop=m.tencrop)

    def __init__(self, bundle: ModelBundle, device: str = "auto", batch_size: int = 64, threads: int = 0,
                 workers: int = 0, dtype: str = "float32", tencrop: bool = False,
                 channels_last: bool | None = None, decode: str = "pillow",
                 cpu_flags: frozenset[str] | None = None) -> None:
        if dtype not in CHOICES:
            raise BundleError(f"dtype {dtype!r} is not one of {', '.join(CHOICES)}")
        if batch_size < 1:
            raise BundleError(f"batch size must be >= 1, got {batch_size}")
        if decode not in ("pillow", "torchvision"):
            raise BundleError(f"decode {decode!r} is not pillow or torchvision")
        self.bundle = bundle
        self.decode_with = decode  # torchvision: decode_jpeg on the device (nvjpeg on CUDA)
        self.device = resolve_device(device)
        self.dtype_name = resolve_dtype(dtype, self.device, cpu_flags)
        self.dtype = DTYPES[self.dtype_name]
        log.info("classifier on %s in %s%s", self.device, self.dtype_name,
                 " (chosen by dtype = auto)" if dtype == "auto" else "")
        self.batch_size = batch_size
        self.tencrop = tencrop
        self.crops = 10 if tencrop else 1
        cores = cpu_count()
        if self.device.type == "cpu" or threads > 0:
            torch.set_num_threads(threads or cores)
        # On CPU the forward pass needs the cores; preprocessing is ~10% of the work. A GPU is fed by all.
        self.workers = workers or (cores if self.device.type == "cuda" else max(1, cores // 4))
        # channels_last: cuDNN's tensor-core kernels want it, and oneDNN ran ResNet50 ~20% faster with it
        # on this project's 2-core CPU (see the bench notes). Convolutional nets only care; others ignore it.
        self.channels_last = True if channels_last is None else channels_last
        self.model: Callable[[torch.Tensor], torch.Tensor] = self._prepare_model(load_model(bundle, self.device))
        self._geometry = _geometry(bundle, tencrop)
        self._normalize = _normalization(bundle)
        self.last_errors: dict[tuple[int, int], str] = {}

    def _prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    # -- public API -----------------------------------------------------------------------------

    def preprocess(self, image: PIL.Image.Image) -> torch.Tensor:
        """One photo as the model sees it: [3, H, W], or [10, 3, H, W] with ten crops."""
        return self._normalize(self._crops(image))

    def _crops(self, image: PIL.Image.Image) -> torch.Tensor:
        """uint8 [3, H, W] (or [10, 3, H, W]): everything but the elementwise normalisation."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        out = self._geometry(image)
        return torch.stack(list(out)) if self.tencrop else out

    def decode(self, data: bytes) -> PIL.Image.Image:
        return decode_photo(data, self.bundle)

    @property
    def temperature(self) -> float | None:
        """The bundle's calibration: every softmax divides the logits by it (None: uncalibrated)."""
        return self.bundle.temperature

    def predict_photos(self, images: Sequence[PhotoInput]) -> np.ndarray:
        """[n, n_labels] probabilities; a photo that fails to decode gets a row of NaN (see last_errors)."""
        items = [((0, i), img) for i, img in enumerate(images)]
        out = np.full((len(items), self.bundle.num_classes), np.nan, dtype=np.float64)
        self.last_errors = {}
        for (_, i), logits in self._run(items):
            out[i] = photo_probabilities(logits, self.temperature)
        return out

    def predict_photo_logits(self, images: Sequence[PhotoInput]) -> np.ndarray:
        """[n, crops, n_labels] raw logits (for calibration); NaN for photos that fail to decode."""
        items = [((0, i), img) for i, img in enumerate(images)]
        out = np.full((len(items), self.crops, self.bundle.num_classes), np.nan, dtype=np.float64)
        self.last_errors = {}
        for (_, i), logits in self._run(items):
            out[i] = logits
        return out

    def predict_observations(
        self, photos: Mapping[int, Sequence[PhotoInput]]
    ) -> dict[int, ObservationPrediction | None]:
        """Averages each observation's photo probabilities over the photos that decoded (None: none did)."""
        items = [((obs_id, i), img) for obs_id, imgs in photos.items() for i, img in enumerate(imgs)]
        sums: dict[int, np.ndarray] = {}
        counts: dict[int, int] = {}
        self.last_errors = {}
        for (obs_id, _), logits in self._run(items):
            probs = photo_probabilities(logits, self.temperature)
            if obs_id in sums:
                sums[obs_id] += probs
                counts[obs_id] += 1
            else:
                sums[obs_id] = probs.copy()
                counts[obs_id] = 1
        result: dict[int, ObservationPrediction | None] = {}
        for obs_id in photos:
            if obs_id in sums:
                avg = sums[obs_id] / counts[obs_id]
                result[obs_id] = ObservationPrediction(obs_id, tuple(float(p) for p in avg), counts[obs_id])
            else:
                result[obs_id] = None
        if self.last_errors:
            log.info("%d photo(s) could not be decoded", len(self.last_errors))
        return result

    def prepare(self, item: PhotoInput) -> torch.Tensor:
        """One photo (bytes are decoded) to uint8 crops [crops, 3, H, W] for `classify_prepared`.

        Thread-safe and CPU-only, so a producer (the streaming cycle's download threads) can run it
        while the calling thread runs the model.
        """
        return self._load(item)

    def classify_prepared(self, tensors: Sequence[torch.Tensor]) -> np.ndarray:
        """[n, n_labels] float64 probabilities (each crop's softmax at the bundle's temperature, then
        the mean over crops) of photos made by `prepare`."""
        return photo_probabilities(self.prepared_logits(tensors), self.temperature)

    def prepared_logits(self, tensors: Sequence[torch.Tensor]) -> np.ndarray:
        """[n, crops, n_labels] logits of photos made by `prepare`."""
        return self.forward_logits(torch.cat(list(tensors))).reshape(len(tensors), self.crops, -1)

    # -- the pipeline ---------------------------------------------------------------------------

    def _load(self, item: PhotoInput) -> torch.Tensor:
        """Runs in a worker thread: decode (for bytes) and preprocess, [crops, 3, H, W]."""
        image = self.decode(item) if isinstance(item, bytes | bytearray | memoryview) else item
        x = self._crops(image)
        return x if self.tencrop else x.unsqueeze(0)

    def _run(self, items: list[tuple[tuple[int, int], PhotoInput]]) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
        """Yields (key, logits [crops, n_labels]) per photo that loaded, in input order."""
        if not items:
            return
        if self.decode_with == "torchvision":
            yield from self._run_on_device(items)
            return
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="preprocess") as pool:
            pending: deque[tuple[tuple[int, int], Future[torch.Tensor]]] = deque()
            source = iter(items)
            look_ahead = max(2 * max(1, self.batch_size // self.crops), 2 * self.workers)
            batch: list[torch.Tensor] = []
            keys: list[tuple[int, int]] = []

            def refill() -> None:
                while len(pending) < look_ahead:
                    nxt = next(source, None)
                    if nxt is None:
                        return
                    pending.append((nxt[0], pool.submit(self._load, nxt[1])))

            refill()
            while pending:
                key, future = pending.popleft()
                refill()
                try:
                    x = future.result()
                except Exception as exc:  # noqa: BLE001 - one odd photo must not sink the batch
                    self.last_errors[key] = photo_error(exc)
                    log.debug("photo %s failed: %s", key, exc)
                    continue
                if batch and (len(batch) + 1) * self.crops > max(self.batch_size, self.crops):
                    yield from self._flush(batch, keys)
                    batch, keys = [], []
                batch.append(x)
                keys.append(key)
            if batch:
                yield from self._flush(batch, keys)

    def _run_on_device(self, items: list[tuple[tuple[int, int], PhotoInput]]
                       ) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
        """The torchvision path: one thread decodes batch i+1 on the device while batch i runs."""
        per_batch = max(1, self.batch_size // self.crops)
        chunks = [items[i:i + per_batch] for i in range(0, len(items), per_batch)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="device-decode") as ahead, \
                ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="preprocess") as pool:
            future = ahead.submit(self._device_chunk, chunks[0], pool)
            for nxt in chunks[1:] + [None]:
                batch, keys, errors = future.result()
                if nxt is not None:
                    future = ahead.submit(self._device_chunk, nxt, pool)
                self.last_errors.update(errors)
                if batch:
                    yield from self._flush(batch, keys)

    def _device_chunk(self, chunk: list[tuple[tuple[int, int], PhotoInput]], pool: ThreadPoolExecutor
                      ) -> tuple[list[torch.Tensor], list[tuple[int, int]], dict[tuple[int, int], str]]:
        """Header checks on the CPU, JPEGs decoded on the device, anything else through Pillow."""
        errors: dict[tuple[int, int], str] = {}
        jpegs: list[tuple[tuple[int, int], bytes, int]] = []
        others: dict[tuple[int, int], Future[torch.Tensor]] = {}
        for key, item in chunk:
            if isinstance(item, PIL.Image.Image):
                others[key] = pool.submit(self._load, item)
                continue
            try:
                header = tensor_decode.read_header(bytes(item))
            except ImageDecodeError as exc:
                errors[key] = str(exc)
                continue
            if header.is_jpeg:
                jpegs.append((key, bytes(item), header.orientation))
            else:
                others[key] = pool.submit(self._load, item)
        decoded = tensor_decode.decode_batch([d for _, d, _ in jpegs], self.device)
        good: list[torch.Tensor] = []
        good_keys: list[tuple[int, int]] = []
        for (key, _, orientation), img in zip(jpegs, decoded, strict=True):
            if isinstance(img, Exception):
                errors[key] = str(img)
            else:
                good.append(tensor_decode.orient(img, orientation))
                good_keys.append(key)
        crops = tensor_decode.geometry_batch(good, self.bundle.resize_size, self.bundle.input_size, self.tencrop)
        ready = dict(zip(good_keys, crops, strict=True))
        for key, fut in others.items():
            try:
                ready[key] = fut.result().to(self.device)
            except Exception as exc:  # noqa: BLE001 - as in the Pillow path
                errors[key] = photo_error(exc)
        keys = [key for key, _ in chunk if key in ready]
        return [ready[k] for k in keys], keys, errors

    def _flush(self, batch: list[torch.Tensor], keys: list[tuple[int, int]]
               ) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
        yield from zip(keys, self.prepared_logits(batch), strict=True)

    def forward_probs(self, x: torch.Tensor) -> np.ndarray:
        """Probabilities of the model on rows: softmax(logits / the bundle's temperature)."""
        return probabilities(self.forward_logits(x), self.temperature)

    def forward_logits(self, x: torch.Tensor) -> np.ndarray:
        """The model's float32 logits on rows (uint8 crops, normalised here, or preprocessed floats).

        On CUDA out-of-memory the batch halves, stays halved, and the run goes on.
        """
        outs: list[np.ndarray] = []
        start, size = 0, max(1, self.batch_size)
        while start < x.shape[0]:
            chunk = x[start:start + size]
            try:
                outs.append(self._forward_once(chunk))
            except torch.cuda.OutOfMemoryError:
                if chunk.shape[0] == 1:
                    raise
                size = max(1, chunk.shape[0] // 2)
                self.batch_size = max(self.crops, size)
                log.warning("out of memory at a batch of %d; retrying with %d", chunk.shape[0], size)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            start += chunk.shape[0]
        return np.concatenate(outs)

    def _forward_once(self, x: torch.Tensor) -> np.ndarray:
        if self.device.type == "cuda" and x.device.type == "cpu":
            x = x.pin_memory().to(self.device, non_blocking=True)
        elif x.device != self.device:
            x = x.to(self.device)
        if x.dtype == torch.uint8:
            x = self._normalize(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self.autocast():
            logits = self.model(x)
        return logits.float().cpu().numpy()

    def autocast(self) -> Any:
        """The one place the reduced precision applies: the model's forward pass under autocast."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def reference_predict(bundle: ModelBundle, images: Sequence[PIL.Image.Image]) -> np.ndarray:
    """The plain definition: fp32, CPU, one photo at a time, single centre crop, the bundle's
    temperature; [n, n_labels]."""
    model = load_model(bundle, "cpu")
    transform = make_transform(bundle)
    rows = []
    with torch.inference_mode():
        for image in images:
            x = transform(image.convert("RGB")).unsqueeze(0)
            rows.append(probabilities(model(x)[0].numpy(), bundle.temperature))
    return np.stack(rows) if rows else np.zeros((0, bundle.num_classes))
