import pytest

from importer.errors import ImageRejected
from importer.pipeline.images import check_url
from importer.storage import original_key, thumbnail_key


def test_only_allowed_hosts_and_http_schemes() -> None:
    allowed = frozenset({"127.0.0.1"})
    check_url("http://127.0.0.1:9000/cdn/a.jpg", allowed)
    for url in ("http://169.254.169.254/latest/meta-data", "file:///etc/passwd", "ftp://127.0.0.1/a.jpg"):
        with pytest.raises(ImageRejected):
            check_url(url, allowed)


def test_keys_are_deterministic_and_distinct_per_product_and_url() -> None:
    from uuid import UUID

    c = UUID(int=1)
    a = original_key(c, "roastify", "st1", "p1", "http://h/a.jpg")
    assert a == original_key(c, "roastify", "st1", "p1", "http://h/a.jpg")
    assert a != original_key(c, "roastify", "st1", "p2", "http://h/a.jpg")
    assert thumbnail_key(c, "roastify", "st1", "p1", "http://h/a.jpg").endswith(".jpg")
    assert a.startswith(f"images/{c}/roastify/st1/")
