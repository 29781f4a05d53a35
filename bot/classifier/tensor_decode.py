"""JPEG decoding and preprocessing on the model's device (nvjpeg on CUDA), batch by batch.

On a GPU, Pillow in CPU threads tops out at a few thousand photos/s while the model could take
more; `torchvision.io.decode_jpeg(..., device="cuda")` decodes a whole batch on the GPU and the
resize and crop follow there. The safety checks stay on the CPU, from the header alone (format,
pixel limit, EXIF orientation), so a decompression bomb is still refused before any decoding.
Results are close to, not bit-equal with, the Pillow path (different resize kernels).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import PIL.Image
import torch
import torchvision.io
from torchvision.transforms.v2 import functional as F

from bot.imaging import DEFAULT_MAX_PIXELS, ImageDecodeError

EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Header:
    """What the CPU learns from a photo's header before the device decodes it."""

    is_jpeg: bool
    orientation: int = 1


def read_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Header:
    """Format, size limit and EXIF orientation without decoding pixels; ImageDecodeError when unusable."""
    if not data:
        raise ImageDecodeError("corrupt", "empty file")
    try:
        img = PIL.Image.open(io.BytesIO(data))
        width, height = img.size
        fmt = img.format
        orientation = int(img.getexif().get(EXIF_ORIENTATION, 1)) if fmt == "JPEG" else 1
    except PIL.Image.DecompressionBombError as exc:
        raise ImageDecodeError("too_large", str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError("not_an_image", f"not a decodable image ({exc})") from None
    if width * height > max_pixels:
        raise ImageDecodeError("too_large", f"{width}x{height} pixels exceeds the limit of {max_pixels}")
    return Header(is_jpeg=fmt == "JPEG", orientation=orientation if 1 <= orientation <= 8 else 1)


def orient(img: torch.Tensor, orientation: int) -> torch.Tensor:
    """Applies an EXIF orientation (2-8) to a [C, H, W] tensor, as PIL's exif_transpose does."""
    if orientation in (2, 4, 5, 7):  # the mirrored ones: mirror left-right, then rotate
        img = img.flip(-1)
    turns = {3: 2, 4: 2, 5: 1, 6: -1, 7: -1, 8: 1}.get(orientation, 0)  # counter-clockwise quarter turns
    return img.rot90(turns, (-2, -1)) if turns else img


def decode_batch(datas: Sequence[bytes], device: torch.device) -> list[torch.Tensor | Exception]:
    """uint8 [3, H, W] tensors on `device`, or the exception of each photo that failed."""
    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    if not tensors:
        return []
    try:
        return list(_decode_jpeg(tensors, device))
    except RuntimeError:
        pass  # one bad photo fails the whole batch: find it one by one
    results: list[torch.Tensor | Exception] = []
    for t in tensors:
        try:
            results.append(_decode_jpeg([t], device)[0])
        except RuntimeError as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else "decode failed"
            results.append(ImageDecodeError("corrupt", f"corrupt image ({msg})"))
    return results


def _decode_jpeg(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders in favour of TorchCodec
        warnings.simplefilter("ignore", DeprecationWarning)
        return list(torchvision.io.decode_jpeg(tensors, mode=torchvision.io.ImageReadMode.RGB, device=device))


def geometry_batch(images: Sequence[torch.Tensor], resize_size: int, input_size: int,
                   tencrop: bool) -> list[torch.Tensor]:
    """Shorter side to resize_size, centre crop (or ten crops); same-size photos are done as one batch."""
    out: list[torch.Tensor | None] = [None] * len(images)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        by_size.setdefault((img.shape[-2], img.shape[-1]), []).append(i)
    for idx in by_size.values():
        batch = torch.stack([images[i] for i in idx])
        batch = F.resize(batch, [resize_size], antialias=True)
        if tencrop:
            crops = torch.stack(F.ten_crop(batch, [input_size]), dim=1)  # [n, 10, 3, S, S]
        else:
            crops = F.center_crop(batch, [input_size]).unsqueeze(1)  # [n, 1, 3, S, S]
        for k, i in enumerate(idx):
            out[i] = crops[k]
    return [t for t in out if t is not None]
