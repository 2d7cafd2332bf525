"""The checker lists the lab's S3 with the lab's credentials, whatever AWS keys the person has.

A developer or a CI runner may have real AWS keys in the environment. They must never reach
the local S3 stand-in, and reading the bucket must not change the process environment. moto's
request recorder (a real moto_server started through lab.stack) shows what each request
carried.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.gather import S3Target, list_s3_keys
from lab.stack.ports import PortAllocator
from lab.stack.s3 import CREDENTIALS, MotoS3
from tests.support.services import running

pytestmark = pytest.mark.integration

COMPANY = "11111111-1111-4111-8111-111111111111"
REAL_KEY = "AKIAREALDEVELOPERKEY1"
REAL_SECRET = "a-real-secret-that-must-stay-home"
REAL_TOKEN = "a-real-session-token"


@pytest.fixture
def recorded_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MotoS3, Path]]:
    recording = tmp_path / "moto-recording.jsonl"
    monkeypatch.setenv("MOTO_ENABLE_RECORDING", "1")
    monkeypatch.setenv("MOTO_RECORDER_FILEPATH", str(recording))
    with running(MotoS3(log_dir=tmp_path, ports=PortAllocator())) as server:
        yield server, recording


def _authorizations(recording: Path) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in recording.read_text().splitlines() if line.strip()]
    return [{k.lower(): v for k, v in entry["headers"].items()} for entry in entries]


async def test_real_aws_keys_in_the_environment_never_reach_the_local_s3(
    recorded_s3: tuple[MotoS3, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, recording = recorded_s3
    server.client().put_object(Bucket=server.bucket, Key=f"images/{COMPANY}/roastify/s1/a", Body=b"x")
    recording.write_text("")  # only the checker's own requests from here on
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", REAL_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", REAL_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", REAL_TOKEN)
    before = dict(os.environ)

    keys = await list_s3_keys(S3Target(bucket=server.bucket, endpoint_url=server.endpoint_url), [COMPANY])

    assert keys == {f"images/{COMPANY}/roastify/s1/a"}
    headers = _authorizations(recording)
    assert headers, "moto recorded no request: the test would prove nothing"
    for header in headers:
        assert f"Credential={CREDENTIALS['AWS_ACCESS_KEY_ID']}/" in header["authorization"]
        assert REAL_KEY not in json.dumps(header)
        assert REAL_TOKEN not in json.dumps(header)
        assert "x-amz-security-token" not in header
    assert dict(os.environ) == before


def test_the_target_keeps_its_secret_out_of_its_repr() -> None:
    """Targets end up in logs and journals; the key id may show, the secret may not."""
    assert "s3cr3t" not in repr(S3Target(bucket="b", secret_access_key="s3cr3t"))
