"""A chaos session leaves the process environment as it found it.

It used to ``os.environ.setdefault`` the lab's S3 credentials for the checker: the process
environment changed for good, and a person's real AWS keys (already set, so kept) went to the
local S3. The checker now gets its credentials passed explicitly (lab.gather.S3Target).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from chaos.progress import Progress
from chaos.session import ChaosSession
from chaos.target import ChaosTarget
from lab.probes import RedisTarget
from lab.stack.ports import free_port


async def test_a_session_does_not_change_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # Nothing listens on these: the observer records its failed samples and the session goes on.
    nowhere = free_port()
    target: Any = SimpleNamespace(
        redis=RedisTarget(url=f"redis://127.0.0.1:{nowhere}/0"),
        database_url=f"postgresql://nobody@127.0.0.1:{nowhere}/none",
        provider_url=f"http://127.0.0.1:{nowhere}",
    )
    session = ChaosSession(
        cast(ChaosTarget, target), tmp_path, started_at=datetime.now(UTC), progress=Progress(StringIO(), quiet=True)
    )
    before = dict(os.environ)

    await session.run([])

    assert dict(os.environ) == before
