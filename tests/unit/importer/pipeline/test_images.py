import pytest

from importer.egress.policy import EgressPolicy
from importer.errors import ImageRejected
from importer.models import RejectionCode
from importer.pipeline.images import check_url
from importer.storage import original_key, thumbnail_key

LOCAL_CDN = EgressPolicy.build(
    schemes=["http", "https"], ports=[80, 443], allowed_private=["127.0.0.1:9000"], resolve_timeout=1.0
)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://[::1/a.jpg", RejectionCode.IMAGE_URL_INVALID),
        ("http://127.0.0.1:99999/a.jpg", RejectionCode.IMAGE_URL_INVALID),
        ("file:///etc/passwd", RejectionCode.IMAGE_SCHEME_NOT_ALLOWED),
        ("ftp://127.0.0.1/a.jpg", RejectionCode.IMAGE_SCHEME_NOT_ALLOWED),
        ("http://169.254.169.254/latest/meta-data", RejectionCode.IMAGE_HOST_NOT_ALLOWED),
        ("http://cdn.example.evil/a.jpg", RejectionCode.IMAGE_HOST_NOT_ALLOWED),
        ("http://127.0.0.1:6379/a.jpg", RejectionCode.IMAGE_PORT_NOT_ALLOWED),  # allowed host, internal port
        ("http://127.0.0.1:9001/a.jpg", RejectionCode.IMAGE_PORT_NOT_ALLOWED),  # next to the exception
    ],
)
def test_each_rule_rejects_with_its_code(url: str, code: RejectionCode) -> None:
    with pytest.raises(ImageRejected) as caught:
        check_url(url, frozenset({"127.0.0.1", "cdn.example.com"}), LOCAL_CDN)
    assert caught.value.code is code


def test_allowed_hosts_on_web_ports_and_the_explicit_exception_pass() -> None:
    allowed = frozenset({"127.0.0.1", "CDN.example.com"})
    check_url("http://127.0.0.1:9000/cdn/a.jpg", allowed, LOCAL_CDN)
    check_url("https://cdn.example.com/a.jpg", allowed, LOCAL_CDN)
    check_url("http://cdn.example.com:80/a.jpg", allowed, LOCAL_CDN)
    check_url("HTTPS://CDN.EXAMPLE.COM/a.jpg", allowed, LOCAL_CDN)


def test_keys_are_deterministic_and_distinct_per_product_and_url() -> None:
    from uuid import UUID

    c = UUID(int=1)
    a = original_key(c, "roastify", "st1", "p1", "http://h/a.jpg")
    assert a == original_key(c, "roastify", "st1", "p1", "http://h/a.jpg")
    assert a != original_key(c, "roastify", "st1", "p2", "http://h/a.jpg")
    assert thumbnail_key(c, "roastify", "st1", "p1", "http://h/a.jpg").endswith(".jpg")
    assert a.startswith(f"images/{c}/roastify/st1/")
