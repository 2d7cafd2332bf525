"""Clients for the importer tests: the API as a company or operator sees it, the fake provider's admin.

``provider`` here is the admin *client* of the session stack's fake provider (the top-level
``provider`` fixture is a standalone server these tests do not use).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.support.importer_api import FakeProvider, ImporterApi


@pytest_asyncio.fixture
async def api(stack) -> AsyncIterator[ImporterApi]:
    client = ImporterApi(stack.api_url, stack.operator_token)
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def provider(stack) -> AsyncIterator[FakeProvider]:
    client = FakeProvider(stack.provider_url)
    try:
        yield client
    finally:
        await client.aclose()
