"""Every line the importer's processes write is one JSON object an operator can search."""

from __future__ import annotations

import json

import pytest

from tests.support.importer_api import FakeProvider, ImporterApi

pytestmark = pytest.mark.integration

REQUIRED = {"timestamp", "level", "event"}


def _check(path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)  # a non-JSON line fails the test here, naming the line
        missing = REQUIRED - record.keys()
        assert not missing, f"{path.name}:{number} lacks {missing}: {line[:200]}"
        records.append(record)
    return records


async def test_worker_and_api_logs_are_json_with_job_context(stack, api: ImporterApi, provider: FakeProvider):
    worker = stack.start_worker()
    tenant = await api.create_company("logged")
    store = await provider.create_store("roastify", products=150, images_per_product=1)
    job_id = await api.submit(tenant, "roastify", store)
    assert (await api.wait_terminal(tenant, job_id, timeout=90))["status"] == "COMPLETED"
    worker.stop()

    records = _check(worker.log_path)
    transitions = [r for r in records if r["event"] in ("phase_started", "phase_finished", "job_completed")]
    # The session stack is shared: the worker may also run a job another test left queued.
    # Every transition carries its job's context; ours carry ours.
    for r in transitions:
        assert r.get("job_id") and r.get("company_id") and r.get("correlation_id"), r
    ours = [r for r in transitions if r["job_id"] == job_id]
    assert {r["event"] for r in ours} == {"phase_started", "phase_finished", "job_completed"}
    assert all(r["company_id"] == tenant.id for r in ours)
    assert all("duration" in r for r in transitions if r["event"] != "phase_started")
    _check(stack.processes["api"].log_path)
