"""Read the checker's inputs from the real systems: Postgres, S3 and the fake provider.

Run once, after the drain, when nothing should move any more. It reads the data of record
the way an operator would (SQL, an S3 listing, the provider's admin API) and hands plain
data to lab.checker, so the arithmetic never depends on a live system.

Everything is scoped to the run's companies: other runs may share the database and bucket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import boto3
import httpx
from botocore.config import Config

from lab.checker import check, stores_expected_to_fail
from lab.checker_inputs import (
    CatalogFormatError,
    CheckInputs,
    CheckReport,
    ExpectedCatalog,
    ImageRow,
    JobRow,
    ProductRow,
)
from lab.rundir import AcknowledgedJob
from lab.stack.s3 import CREDENTIALS, REGION

log = logging.getLogger(__name__)

MAX_S3_PAGES = 10_000  # 1000 keys a page: ten million objects per prefix is past any drill
CATALOG_FETCH_CONCURRENCY = 8


class GatherError(Exception):
    """An input could not be read; the checker must not judge on partial data."""


@dataclass(frozen=True)
class S3Target:
    """Where the images are, and the credentials to list them with.

    The credentials are passed to the client explicitly and default to the lab's fixed ones
    (the S3 endpoint is the stack's moto server): boto3's own lookup would find a developer's
    real AWS keys in the environment or ~/.aws and send them to the stand-in.
    """

    bucket: str
    endpoint_url: str | None = None
    region: str = REGION
    access_key_id: str = CREDENTIALS["AWS_ACCESS_KEY_ID"]
    secret_access_key: str = field(default=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], repr=False)

    def client(self, timeout: float) -> Any:
        """A boto3 S3 client with exactly these credentials (no session token, no profile)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=None,
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3}),
        )


@dataclass(frozen=True)
class GatherSettings:
    database_url: str
    s3: S3Target
    provider_url: str
    timeout: float = 60.0  # per query / request


# outcome and rejection_counts through to_jsonb: an importer whose schema predates them (before
# migration 0002) reads as NULL rather than failing the whole check.
_JOBS_SQL = """
SELECT id::text, company_id::text, provider, store_id, status, error, include_images,
       to_jsonb(j) ->> 'outcome' AS outcome, (to_jsonb(j) -> 'rejection_counts')::text AS rejection_counts,
       (to_jsonb(j) -> 'verification_issues')::text AS verification_issues
FROM product_import_jobs j WHERE company_id = ANY($1::uuid[])
"""
_PRODUCTS_SQL = """
SELECT company_id::text, external_id, import_source
FROM products WHERE company_id = ANY($1::uuid[])
"""
_IMAGES_SQL = """
SELECT i.company_id::text, i.import_source, p.external_id, i.source_url, i.status, i.s3_key, i.thumbnail_key
FROM product_images i JOIN products p ON p.id = i.product_id
WHERE i.company_id = ANY($1::uuid[])
"""


async def read_database(
    database_url: str, companies: Sequence[str], *, request_timeout: float = 60.0
) -> tuple[list[JobRow], list[ProductRow], list[ImageRow]]:
    """Jobs, products and images of the given companies, in one repeatable-read snapshot."""
    ids = [UUID(c) for c in companies]
    try:
        conn = await asyncpg.connect(database_url, timeout=request_timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise GatherError(f"postgres: cannot connect: {exc!r}") from exc
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            jobs = await conn.fetch(_JOBS_SQL, ids, timeout=request_timeout)
            products = await conn.fetch(_PRODUCTS_SQL, ids, timeout=request_timeout)
            images = await conn.fetch(_IMAGES_SQL, ids, timeout=request_timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise GatherError(f"postgres: query failed: {exc!r}") from exc
    finally:
        await conn.close(timeout=10)
    return (
        [_job_row(dict(r)) for r in jobs],
        [ProductRow(**dict(r)) for r in products],
        [ImageRow(**dict(r)) for r in images],
    )


def _job_row(row: dict[str, Any]) -> JobRow:
    """A job row; the per-record columns (migration 0002) as plain data, None where absent."""
    raw = row.pop("rejection_counts", None)
    counts = json.loads(raw) if raw else None
    if counts is not None and not isinstance(counts, dict):
        raise GatherError(f"job {row['id']}: rejection_counts is not an object: {raw[:200]}")
    raw_issues = row.pop("verification_issues", None)
    issues = json.loads(raw_issues) if raw_issues else None
    if issues is not None and not isinstance(issues, list):
        raise GatherError(f"job {row['id']}: verification_issues is not a list: {raw_issues[:200]}")
    codes = None if issues is None else tuple(str(i.get("code") if isinstance(i, dict) else i) for i in issues)
    return JobRow(**row, rejection_counts=counts, verification_issues=codes)


def _list_keys_blocking(target: S3Target, prefixes: Iterable[str], timeout: float) -> frozenset[str]:
    client = target.client(timeout)
    keys: set[str] = set()
    for prefix in prefixes:
        kwargs: dict[str, Any] = {"Bucket": target.bucket, "Prefix": prefix, "MaxKeys": 1000}
        for _page in range(MAX_S3_PAGES):
            page = client.list_objects_v2(**kwargs)
            keys.update(obj["Key"] for obj in page.get("Contents", ()))
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
        else:
            raise GatherError(f"s3: more than {MAX_S3_PAGES} pages under {prefix!r}; listing incomplete")
    return frozenset(keys)


async def list_s3_keys(target: S3Target, companies: Sequence[str], *, request_timeout: float = 60.0) -> frozenset[str]:
    """Every original and thumbnail key of the companies (boto3 is blocking: run in a thread)."""
    prefixes = [f"{kind}/{company}/" for company in companies for kind in ("images", "thumbnails")]
    try:
        return await asyncio.to_thread(_list_keys_blocking, target, prefixes, request_timeout)
    except GatherError:
        raise
    except Exception as exc:  # botocore raises a wide family; all mean "listing unavailable"
        raise GatherError(f"s3: listing failed: {exc!r}") from exc


async def fetch_catalogs(
    provider_url: str, store_ids: Iterable[str], *, request_timeout: float = 60.0
) -> dict[str, ExpectedCatalog]:
    """The fake provider's expected catalog of each store, a few requests at a time."""
    gate = asyncio.Semaphore(CATALOG_FETCH_CONCURRENCY)
    base = provider_url.rstrip("/")

    async with httpx.AsyncClient(timeout=request_timeout) as client:

        async def one(store_id: str) -> ExpectedCatalog:
            async with gate:
                try:
                    response = await client.get(f"{base}/admin/stores/{store_id}/expected")
                    response.raise_for_status()
                    return ExpectedCatalog.from_json(response.json())
                except (httpx.HTTPError, ValueError, CatalogFormatError) as exc:
                    raise GatherError(f"provider: expected catalog of {store_id!r}: {exc!r}") from exc

        stores = sorted(set(store_ids))
        catalogs = await asyncio.gather(*(one(s) for s in stores))
    return dict(zip(stores, catalogs, strict=True))


async def gather_inputs(
    settings: GatherSettings,
    acknowledged: Sequence[AcknowledgedJob],
    *,
    extra_companies: Iterable[str] = (),
) -> CheckInputs:
    """Everything the checker compares, read concurrently from the three systems."""
    companies = sorted({a.company_id for a in acknowledged} | set(extra_companies))
    stores = {a.store_id for a in acknowledged}
    log.info("checker: gathering %d companies, %d stores", len(companies), len(stores))
    (jobs, products, images), keys, catalogs = await asyncio.gather(
        read_database(settings.database_url, companies, request_timeout=settings.timeout),
        list_s3_keys(settings.s3, companies, request_timeout=settings.timeout),
        fetch_catalogs(settings.provider_url, stores, request_timeout=settings.timeout),
    )
    return CheckInputs(
        acknowledged=list(acknowledged),
        jobs=jobs,
        catalogs=catalogs,
        products=products,
        images=images,
        s3_keys=keys,
        companies=frozenset(companies),
    )


async def gather_and_check(
    settings: GatherSettings,
    acknowledged: Sequence[AcknowledgedJob],
    *,
    expected_to_fail: Iterable[str] | None = None,
) -> CheckReport:
    """Gather, then check. ``expected_to_fail=None`` derives it from the malformed catalogs."""
    inputs = await gather_inputs(settings, acknowledged)
    failing = stores_expected_to_fail(inputs.catalogs.values()) if expected_to_fail is None else expected_to_fail
    return check(inputs, expected_to_fail=failing)
