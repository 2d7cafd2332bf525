"""Images in S3 under deterministic keys, through boto3 in worker threads.

Keys are a pure function of (company, provider, store, product, source url), so a re-run
of any image task writes the same object again (S3 PUT is idempotent per key) and a HEAD
before the download lets a resumed job skip work already done.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any
from uuid import UUID

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from importer.errors import DependencyUnavailable
from importer.logs import get_logger

log = get_logger(__name__)


def image_digest(external_id: str, url: str) -> str:
    return hashlib.sha256(f"{external_id}\n{url}".encode()).hexdigest()[:32]


def original_key(company_id: UUID, provider: str, store_id: str, external_id: str, url: str) -> str:
    return f"images/{company_id}/{provider}/{store_id}/{image_digest(external_id, url)}"


def thumbnail_key(company_id: UUID, provider: str, store_id: str, external_id: str, url: str) -> str:
    return f"thumbnails/{company_id}/{provider}/{store_id}/{image_digest(external_id, url)}.jpg"


class ImageStore:
    def __init__(self, *, bucket: str, endpoint_url: str | None, region: str, max_connections: int) -> None:
        self.bucket = bucket
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                max_pool_connections=max(10, max_connections),
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    async def ensure_bucket(self) -> None:
        def _ensure() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self._client.create_bucket(Bucket=self.bucket)
                log.info("s3_bucket_created", bucket=self.bucket)

        await self._call(_ensure)

    async def exists(self, key: str) -> bool:
        def _head() -> bool:
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise

        return bool(await self._call(_head))

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(
            lambda: self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        )

    async def _call(self, fn: Any) -> Any:
        try:
            return await asyncio.to_thread(fn)
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailable(f"S3 error: {exc}") from exc
