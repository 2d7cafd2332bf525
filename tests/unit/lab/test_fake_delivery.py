"""The fake provider's delivery faults: a gzip bomb that decodes to the real answer, a trickle,
and image URLs moved to another base (how a hostile catalog points a worker somewhere else)."""

from __future__ import annotations

import json
import zlib

from lab.fake_provider.delivery import gzip_bomb, rebase_images, trickle
from lab.fake_provider.faults import FaultBook, FaultRule

PAGE = json.dumps({"data": [{"id": "a", "images": [{"url": "http://127.0.0.1:5/cdn/st/0/0.jpg"}]}]}).encode()


def test_the_bomb_is_small_and_decodes_to_padding_then_the_real_page() -> None:
    pad = 8 * 1024 * 1024 + 3
    body = gzip_bomb(PAGE, pad)
    assert len(body) < pad // 500
    decoded = zlib.decompress(body, 16 + zlib.MAX_WBITS)  # checks the trailer's CRC and size too
    assert len(decoded) == pad + len(PAGE)
    assert json.loads(decoded) == json.loads(PAGE)  # still a valid page: only a decoded cap stops it


async def test_trickle_sends_the_body_in_pieces_of_the_rate() -> None:
    # the sleep between pieces is real; take only the first piece to keep the test instant
    stream = trickle(b"abcdefghij", 4)
    pieces = [await anext(stream)]
    await stream.aclose()
    assert pieces == [b"abcd"]


def test_rebase_moves_image_urls_only() -> None:
    page = {
        "data": [{"images": [{"url": "http://127.0.0.1:5/cdn/st/0/0.jpg"}], "link": "http://127.0.0.1:5/roastify/x"}]
    }
    moved = rebase_images(page, "http://127.0.0.1:5", "http://localhost:6")
    assert moved == {
        "data": [{"images": [{"url": "http://localhost:6/cdn/st/0/0.jpg"}], "link": "http://127.0.0.1:5/roastify/x"}]
    }


def test_delivery_faults_follow_the_rule_scopes() -> None:
    book = FaultBook()
    book.set(FaultRule(store_id="a", delivery="trickle", image_base_url="http://localhost:6"))
    book.set(FaultRule(delivery="gzip_bomb", apply_to_images=True))
    rule = book.delivery("a", "api")
    assert rule is not None and rule.delivery == "trickle"
    assert book.delivery("a", "image") is None  # the store's own rule wins and spares images
    other = book.delivery("b", "image")
    assert other is not None and other.delivery == "gzip_bomb"
    assert book.image_base_url("a") == "http://localhost:6" and book.image_base_url("b") is None
