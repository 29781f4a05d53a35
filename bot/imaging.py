"""Decoding photo bytes into RGB images, safely: shared by the photo stage and the classifier.

Content is judged by decoding, never by extension or Content-Type; decompression bombs are
refused before the pixels are decoded.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 40_000_000


class ImageDecodeError(ValueError):
    """A photo that cannot be used; `kind` is recorded as the photo's status."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # corrupt, truncated, too_large, not_an_image


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: int | None = None) -> Image.Image:
    """Fully decode `data` to an RGB image with EXIF orientation applied.

    `draft_size` lets libjpeg downscale by 1/2, 1/4 or 1/8 while decoding, when the image stays at
    least that large on its shorter side: several times faster for the model's 256 px input.
    """
    if not data:
        raise ImageDecodeError("corrupt", "empty file")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError("too_large", str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError("not_an_image", f"not a decodable image ({exc})") from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageDecodeError("too_large", f"{width}x{height} pixels exceeds the limit of {max_pixels}")
    if draft_size and img.format == "JPEG":
        scale = min(width, height) / draft_size
        if scale >= 2:
            img.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError("too_large", str(exc)) from None
    except OSError as exc:
        kind = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageDecodeError(kind, f"{kind} image ({exc})") from None
    except (SyntaxError, ValueError) as exc:
        raise ImageDecodeError("corrupt", f"corrupt image ({exc})") from None
    upright = ImageOps.exif_transpose(img)
    return upright if upright.mode == "RGB" else upright.convert("RGB")
