"""Redis key names: arq's own (re-exported so nobody spells them by hand) and ours."""

from __future__ import annotations

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix

WORKER_KEY_PREFIX = "importer:workers:"


def in_progress_key(job_id: str) -> str:
    return f"{in_progress_key_prefix}{job_id}"


def retry_key(job_id: str) -> str:
    return f"{retry_key_prefix}{job_id}"


def result_key(job_id: str) -> str:
    return f"{result_key_prefix}{job_id}"


def job_key(job_id: str) -> str:
    return f"{job_key_prefix}{job_id}"


def worker_key(worker_id: str) -> str:
    return f"{WORKER_KEY_PREFIX}{worker_id}"


JOB_FUNCTION = "import_catalog"
