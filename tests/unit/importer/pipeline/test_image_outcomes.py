"""store_batch sorts failures by whose fault they are: the image host's vs our own dependencies'."""

from __future__ import annotations

import io
from uuid import UUID, uuid4

import httpx
from PIL import Image

from importer.egress.policy import EgressPolicy
from importer.errors import DependencyUnavailable
from importer.models import RejectionCode
from importer.pipeline.images import ImageLimits, ImageTarget, store_batch

HOST = "cdn.example.com"


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(out, format="JPEG")
    return out.getvalue()


def _handler(request: httpx.Request) -> httpx.Response:
    match request.url.path:
        case "/ok.jpg":
            return httpx.Response(200, content=_jpeg(), headers={"content-type": "image/jpeg"})
        case "/down.jpg":
            return httpx.Response(503)
        case "/hang.jpg":
            raise httpx.ReadTimeout("timed out", request=request)
        case "/html.jpg":
            return httpx.Response(200, content=b"<html/>", headers={"content-type": "text/html"})
        case _:
            return httpx.Response(404)


class _Store:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.keys: list[str] = []

    async def exists(self, key: str) -> bool:
        return False

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.fail:
            raise DependencyUnavailable("s3 unavailable")
        self.keys.append(key)


def _target(path: str) -> ImageTarget:
    return ImageTarget(uuid4(), UUID(int=1), "roastify", "st", "p1", f"https://{HOST}{path}")


LIMITS = ImageLimits(
    allowed_hosts=frozenset({HOST}),
    max_bytes=1_000_000,
    max_pixels=1_000_000,
    thumbnail_size=16,
    policy=EgressPolicy.build(schemes=["https"], ports=[443], allowed_private=[], resolve_timeout=1.0),
)


async def test_host_failures_are_the_images_problem_and_rejections_carry_codes() -> None:
    targets = [_target(p) for p in ("/ok.jpg", "/down.jpg", "/hang.jpg", "/html.jpg", "/gone.jpg")]
    async with httpx.AsyncClient(transport=httpx.MockTransport(_handler)) as client:
        outcome = await store_batch(targets, client=client, store=_Store(), limits=LIMITS, concurrency=2)  # type: ignore[arg-type]
    assert [s.image_id for s in outcome.stored] == [targets[0].image_id]
    assert {i for i, _ in outcome.unreachable} == {targets[1].image_id, targets[2].image_id}
    assert {(i, c) for i, c, _ in outcome.rejected} == {
        (targets[3].image_id, RejectionCode.IMAGE_NOT_IMAGE),
        (targets[4].image_id, RejectionCode.IMAGE_HTTP_ERROR),
    }
    assert outcome.transient == []  # nothing here is a reason to hand the job back


async def test_our_own_storage_failing_still_hands_the_job_back() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_handler)) as client:
        outcome = await store_batch(
            [_target("/ok.jpg")],
            client=client,
            store=_Store(fail=True),  # type: ignore[arg-type]
            limits=LIMITS,
            concurrency=1,
        )
    assert len(outcome.transient) == 1 and isinstance(outcome.transient[0], DependencyUnavailable)
    assert outcome.unreachable == [] and outcome.stored == []
