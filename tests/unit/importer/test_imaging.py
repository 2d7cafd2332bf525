import io
import struct
import zlib

import pytest
from PIL import Image

from importer.errors import ImageRejected
from importer.imaging import make_thumbnail
from importer.models import RejectionCode


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header that declares a huge canvas; the pixel data is never reached."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_thumbnail_fits_the_box_and_is_jpeg() -> None:
    thumb = make_thumbnail(_jpeg(800, 400), max_pixels=10_000_000, size=256)
    assert (thumb.width, thumb.height) == (256, 128)
    assert thumb.content_type == "image/jpeg"
    assert thumb.source_content_type == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.data)).format == "JPEG"


def test_decompression_bomb_is_rejected_before_decoding() -> None:
    with pytest.raises(ImageRejected, match="decompression bomb"):
        make_thumbnail(_png_declaring(30_000, 30_000), max_pixels=40_000_000, size=256)


@pytest.mark.parametrize("payload", [b"<html>not an image</html>", b"", b"\xff\xd8\xff\xe0 truncated"])
def test_non_images_are_rejected(payload: bytes) -> None:
    with pytest.raises(ImageRejected):
        make_thumbnail(payload, max_pixels=40_000_000, size=256)


@pytest.mark.parametrize("side", [30_000, 200_000])  # our guard; Pillow's own (inside open) past 2x its limit
def test_rejections_carry_their_code(side: int) -> None:
    with pytest.raises(ImageRejected) as bomb:
        make_thumbnail(_png_declaring(side, side), max_pixels=40_000_000, size=64)
    assert bomb.value.code == RejectionCode.IMAGE_BOMB
    with pytest.raises(ImageRejected) as junk:
        make_thumbnail(b"not an image", max_pixels=1_000_000, size=64)
    assert junk.value.code == RejectionCode.IMAGE_UNDECODABLE
