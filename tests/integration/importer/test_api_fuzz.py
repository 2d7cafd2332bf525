"""API fuzzing: Schemathesis generates requests from the OpenAPI document and checks every answer.

Criteria (``--checks all``): no server error, every status code and content type documented
for its operation, bodies matching their documented schemas, invalid input rejected and valid
input accepted, authentication enforced. Bounded by ``--max-examples`` per operation and a
subprocess timeout, so the step takes a couple of minutes at most.

The fuzzer runs against an API process of its own (the session stack's Postgres and Redis,
its own port): it fails authentication on purpose thousands of times, which would put the
shared API's failed-auth limit on 127.0.0.1 for every later test. That process allows it
(``IMPORTER_AUTH_FAILURE_LIMIT_PER_MIN``); everything else is the stack's configuration.

``POST /v1/ops/queue/pause`` is left out: pausing the shared queue would change what every
other test in the session sees. Its answers are the same code paths as ``/queue/resume``'s.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.stack.importer import ImporterApi as ApiProcess
from lab.stack.ports import PortAllocator
from tests.support.importer_api import ImporterApi
from tests.support.services import running

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 100  # per operation and phase: about a minute for the whole document on the reference machine
RUN_TIMEOUT = 300.0  # a hard bound on each fuzzing run


@pytest.fixture
def fuzz_api(stack, tmp_path: Path) -> Iterator[str]:
    env = stack.importer_env(
        {
            "IMPORTER_AUTH_FAILURE_LIMIT_PER_MIN": "1000000",
            # The stateful phase follows the event streams of jobs it created; with no worker in
            # the test stack they never end, so each stream is cut after a few seconds.
            "IMPORTER_SSE_MAX_DURATION": "5",
        }
    )
    with running(ApiProcess(env=env, log_dir=tmp_path, ports=PortAllocator(), name="fuzz-api")) as api:
        yield api.url


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is not installed in this environment"
    return found


def _fuzz(api_url: str, token: str, include_regex: str, report: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        _schemathesis(),
        "run",
        f"{api_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261202",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--header",
        f"Authorization: Bearer {token}",
        "--include-path-regex",
        include_regex,
        "--exclude-path",
        "/v1/ops/queue/pause",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
        "--output-sanitize",
        "true",
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)


def _assert_clean(done: subprocess.CompletedProcess[str]) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-12000:]


async def test_tenant_api_survives_fuzzing(stack, api: ImporterApi, fuzz_api: str, tmp_path: Path):
    tenant = await api.create_company("fuzzed", tier="ENTERPRISE")
    done = _fuzz(fuzz_api, tenant.api_key, r"^/(v1/imports|healthz|health/queue)", tmp_path / "tenant.xml")
    _assert_clean(done)


async def test_operator_api_survives_fuzzing(stack, fuzz_api: str, tmp_path: Path):
    done = _fuzz(fuzz_api, stack.operator_token, r"^/v1/ops/", tmp_path / "ops.xml")
    _assert_clean(done)
