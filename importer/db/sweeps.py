"""The reconciler's reads of ``product_import_jobs`` and its compare-and-set writes.

The reconciler reads a page of candidates, asks Redis about them, then writes. Between the read
and the write a worker may claim a row, renew its heartbeat or hand it back, so every write is a
compare-and-set on what was read (``SeenJob``): a row that changed in between matches nothing and
is left to the next sweep, never overwritten. Kept apart from ``jobs`` (a running job's own
fenced writes) because the two sides guard against each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from importer.models import JobStatus

_ACTIVE = (JobStatus.PENDING.value, JobStatus.IN_PROGRESS.value)

Keyset = tuple[datetime, UUID]
"""Where a page ends: (created_at, id) of its last row. Both never change, so paging on them
neither skips nor repeats a row that is updated while the sweep runs."""

_LAST_SIGN_OF_LIFE = "coalesce(heartbeat_at, run_started_at, started_at, updated_at)"

_CANDIDATE_COLUMNS = """
    id, status, company_id, created_at, updated_at, heartbeat_at, run_token, started_at, run_started_at,
    worker_id, attempts, queue_try"""


@dataclass(frozen=True)
class SeenJob:
    """A job row as a sweep saw it: the compare-and-set writes match only this exact version."""

    id: UUID
    status: str
    run_token: UUID | None
    heartbeat_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> SeenJob:
        return cls(
            id=row["id"],
            status=row["status"],
            run_token=row["run_token"],
            heartbeat_at=row["heartbeat_at"],
            updated_at=row["updated_at"],
        )


def _seen_arrays(seen: Sequence[SeenJob]) -> tuple[list[UUID], list[str], list[UUID | None], list[Any], list[Any]]:
    return (
        [s.id for s in seen],
        [s.status for s in seen],
        [s.run_token for s in seen],
        [s.heartbeat_at for s in seen],
        [s.updated_at for s in seen],
    )


# unnest() of the five arrays above, joined on id; a row matches only if nothing changed.
_UNCHANGED = """
  FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::timestamptz[])
       AS seen(id, status, run_token, heartbeat_at, updated_at)
 WHERE j.id = seen.id
   AND j.status = seen.status
   AND j.run_token IS NOT DISTINCT FROM seen.run_token
   AND j.heartbeat_at IS NOT DISTINCT FROM seen.heartbeat_at
   AND j.updated_at = seen.updated_at"""


def _after(after: Keyset | None, first_param: int) -> tuple[str, list[Any]]:
    if after is None:
        return "", []
    return f"AND (created_at, id) > (${first_param}::timestamptz, ${first_param + 1}::uuid)", [after[0], after[1]]


async def list_orphan_candidates(conn: Any, *, min_age_s: float, limit: int, after: Keyset | None = None) -> list[Any]:
    """One page of active jobs quiet for longer than ``min_age_s``, oldest first, after ``after``.

    PENDING by age and last update, IN_PROGRESS by their run's last sign of life. Whether Redis
    knows them is the caller's question; this only narrows the rows worth asking about.
    """
    keyset, args = _after(after, 3)
    rows: list[Any] = await conn.fetch(
        f"""
        SELECT {_CANDIDATE_COLUMNS} FROM product_import_jobs
         WHERE ((status = 'PENDING' AND created_at < now() - make_interval(secs => $1)
                 AND updated_at < now() - make_interval(secs => $1))
             OR (status = 'IN_PROGRESS' AND {_LAST_SIGN_OF_LIFE} < now() - make_interval(secs => $1)))
           {keyset}
         ORDER BY created_at, id
         LIMIT $2
        """,
        min_age_s,
        limit,
        *args,
    )
    return rows


async def list_stall_candidates(
    conn: Any, *, older_than_s: float, limit: int, after: Keyset | None = None
) -> list[Any]:
    """One page of IN_PROGRESS jobs whose run shows no sign of life for ``older_than_s``.

    Judged by the heartbeat (set by each claim, renewed by the lease keeper and every
    checkpoint), never by ``started_at``: a job that was retried, deferred or handed back for
    hours is not stalled if its current run is alive.
    """
    keyset, args = _after(after, 3)
    rows: list[Any] = await conn.fetch(
        f"""
        SELECT {_CANDIDATE_COLUMNS} FROM product_import_jobs
         WHERE status = 'IN_PROGRESS' AND {_LAST_SIGN_OF_LIFE} < now() - make_interval(secs => $1)
           {keyset}
         ORDER BY created_at, id
         LIMIT $2
        """,
        older_than_s,
        limit,
        *args,
    )
    return rows


async def mark_requeued(conn: Any, seen: Sequence[SeenJob]) -> list[UUID]:
    """PENDING again with no owner, for each row still exactly as seen; the ids that were marked.

    The reconciler marks first and enqueues after the commit: a row claimed (or renewed, or
    handed back) since it was read is not overwritten, and a zombie run still holding the old
    token is fenced out.
    """
    if not seen:
        return []
    rows = await conn.fetch(
        f"""
        UPDATE product_import_jobs j
           SET status = 'PENDING', run_token = NULL, worker_id = NULL, updated_at = now(),
               error = coalesce(j.error, 'requeued by the reconciler')
        {_UNCHANGED}
           AND j.status = ANY($6::text[])
        RETURNING j.id
        """,
        *_seen_arrays(seen),
        list(_ACTIVE),
    )
    return [row["id"] for row in rows]


async def fail_unchanged(conn: Any, seen: Sequence[SeenJob], reason: str) -> list[Any]:
    """FAILED with ``reason``, for each active row still exactly as seen (abandoned too often)."""
    if not seen:
        return []
    rows: list[Any] = await conn.fetch(
        f"""
        UPDATE product_import_jobs j
           SET status = 'FAILED', error = $6, finished_at = now(), updated_at = now(), run_token = NULL
        {_UNCHANGED}
           AND j.status = ANY($7::text[])
        RETURNING j.id, j.company_id
        """,
        *_seen_arrays(seen),
        reason[:2000],
        list(_ACTIVE),
    )
    return rows


async def fail_stalled(conn: Any, seen: Sequence[SeenJob], *, older_than_s: float) -> list[Any]:
    """FAILED with a timeout, for each IN_PROGRESS row still at the heartbeat it was judged by.

    A heartbeat renewed (or a new claim) since the sweep read the row makes it match nothing.
    """
    if not seen:
        return []
    rows: list[Any] = await conn.fetch(
        f"""
        UPDATE product_import_jobs j
           SET status = 'FAILED', finished_at = now(), updated_at = now(), run_token = NULL, error = $6
        {_UNCHANGED}
           AND j.status = 'IN_PROGRESS'
           AND coalesce(j.heartbeat_at, j.run_started_at, j.started_at, j.updated_at)
               < now() - make_interval(secs => $7)
        RETURNING j.id, j.company_id, j.started_at, j.run_started_at, j.heartbeat_at, j.worker_id, j.attempts
        """,
        *_seen_arrays(seen),
        f"timeout: job stalled: no heartbeat from its run for more than {older_than_s:g} s",
        older_than_s,
    )
    return rows
