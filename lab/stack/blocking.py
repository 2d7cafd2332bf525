"""Run a coroutine to completion from synchronous stack code, whatever thread calls it.

The stack's API is synchronous (pytest fixtures, the CLI, chaos steps), but asyncpg is
async-only. ``asyncio.run`` refuses to run inside a running loop, which is exactly where an
async test calling ``stack.restart_postgres()`` is; a private thread with its own loop works
in both places.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run ``factory()`` on a fresh event loop in a helper thread, at most ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stack-blocking") as pool:
        return pool.submit(asyncio.run, bounded()).result()
