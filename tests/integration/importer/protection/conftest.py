"""Real services for the protection tests: the session stack of tests/conftest.py for the data
stores and the fake provider, and per test the importer processes (API, reconciler, workers)
with that test's settings.

Protection is all about settings (thresholds, windows, intervals), and drills shrink them only
through IMPORTER_* variables, so each test starts its own API / reconciler / workers with its
own overrides on top of ``BASE_ENV``. State is reset between tests: Redis flushed, job tables
truncated, provider faults cleared; processes a test started are stopped when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lab.stack import Stack
from tests.integration.importer.protection.helpers import Lab


@pytest.fixture
async def lab(session_stack: Stack) -> AsyncIterator[Lab]:
    lab = Lab(session_stack)
    await lab.reset()
    try:
        yield lab
    finally:
        await lab.close()
