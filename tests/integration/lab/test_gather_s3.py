"""The gatherer's S3 listing against moto's S3 server on loopback: paginated, scoped by company."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from lab.gather import S3Target, list_s3_keys

pytestmark = pytest.mark.integration
A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Target]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "drill")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "drill")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Target(bucket="product-images", endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


async def test_lists_every_key_of_the_companies_across_pages(s3: S3Target) -> None:
    client: Any = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region)
    client.create_bucket(Bucket=s3.bucket)
    keys = {f"images/{A}/roastify/s1/{n:04d}" for n in range(1100)}  # more than one 1000-key page
    keys |= {f"thumbnails/{A}/roastify/s1/{n:04d}.jpg" for n in range(3)}
    for key in keys:
        client.put_object(Bucket=s3.bucket, Key=key, Body=b"x")
    client.put_object(Bucket=s3.bucket, Key=f"images/{B}/roastify/s9/other", Body=b"x")

    listed = await list_s3_keys(s3, [A])
    assert listed == frozenset(keys)
