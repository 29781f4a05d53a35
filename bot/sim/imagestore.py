"""Photo bytes in iNaturalist's size words, resized on demand and cached.

A stored photo that already fits a size is served byte for byte, so tests can compare what a client
downloaded with what the world holds; undecodable bytes are served as they are (a corrupt photo).
"""

from __future__ import annotations

import io
import threading

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.sim.model import World

SIZES: dict[str, int] = {
    "square": 75, "thumb": 100, "small": 240, "medium": 500, "large": 1024, "original": 2048,
}


class PhotoStore:
    """Looks photos up in a World (which may change while serving) and caches derived sizes."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str], tuple[bytes, bytes]] = {}
        self._dims: dict[int, tuple[bytes, tuple[int, int] | None]] = {}

    def dimensions(self, photo_id: int) -> tuple[int, int] | None:
        """(width, height) of the stored photo; None when missing or not an image."""
        data = self.world.photos.get(photo_id)
        if data is None:
            return None
        with self._lock:
            cached = self._dims.get(photo_id)
        if cached is not None and cached[0] is data:
            return cached[1]
        dims: tuple[int, int] | None
        try:
            with Image.open(io.BytesIO(data)) as img:
                dims = img.size
        except (UnidentifiedImageError, OSError, ValueError):
            dims = None
        with self._lock:
            self._dims[photo_id] = (data, dims)
        return dims

    def get(self, photo_id: int, size: str) -> bytes | None:
        """The photo at that size word; None when unknown (photo or size)."""
        data = self.world.photos.get(photo_id)
        if data is None or size not in SIZES:
            return None
        dims = self.dimensions(photo_id)
        if dims is None or _fits(dims, size):
            return data
        with self._lock:
            cached = self._cache.get((photo_id, size))
        if cached is not None and cached[0] is data:
            return cached[1]
        out = _resize(data, size)
        with self._lock:
            self._cache[(photo_id, size)] = (data, out)
        return out


def _fits(dims: tuple[int, int], size: str) -> bool:
    bound = SIZES[size]
    width, height = dims
    if size == "square":
        return width == height and width <= bound
    return max(width, height) <= bound


def _resize(data: bytes, size: str) -> bytes:
    bound = SIZES[size]
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
    if size == "square":
        side = min(bound, *rgb.size)
        rgb = ImageOps.fit(rgb, (side, side), method=Image.Resampling.BILINEAR)
    else:
        rgb.thumbnail((bound, bound), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
