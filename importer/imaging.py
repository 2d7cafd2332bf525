"""Image checks and thumbnails with Pillow; pure and CPU-bound (callers run them in a thread).

The decompression-bomb guard matters: a 50 KB PNG can declare 30,000 x 30,000 pixels and
ask for gigabytes when decoded. Pillow's own guard is process-global state, so we check the
declared size ourselves before decoding anything.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from importer.errors import ImageRejected
from importer.models import RejectionCode

_FORMAT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str
    source_content_type: str
    width: int
    height: int


def make_thumbnail(data: bytes, *, max_pixels: int, size: int) -> Thumbnail:
    """Validate ``data`` as an image and return a JPEG thumbnail at most ``size`` px on a side."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            if fmt not in _FORMAT_TYPES:
                raise ImageRejected(
                    f"unsupported image format {fmt or 'unknown'}", code=RejectionCode.IMAGE_FORMAT_UNSUPPORTED
                )
            width, height = img.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"decompression bomb guard: {width}x{height} exceeds {max_pixels} pixels",
                    code=RejectionCode.IMAGE_BOMB,
                )
            img.draft("RGB", (size, size))  # lets the JPEG decoder scale down while decoding
            img.thumbnail((size, size))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=85, optimize=True)
            return Thumbnail(
                data=out.getvalue(),
                content_type="image/jpeg",
                source_content_type=_FORMAT_TYPES[fmt],
                width=img.width,
                height=img.height,
            )
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard can fire first, inside open()
        raise ImageRejected(f"decompression bomb guard: {exc}", code=RejectionCode.IMAGE_BOMB) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"not a decodable image: {exc}", code=RejectionCode.IMAGE_UNDECODABLE) from exc
