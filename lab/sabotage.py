"""The checker's self-test: break the data behind the importer's back, and watch the verdict fail.

A checker that has only ever said "0 lost" proves nothing: ``drill run <scenario> --sabotage
delete-products=N`` deletes N of the run's imported products straight from Postgres (their
image rows go with them, by the schema's cascade; their S3 objects stay) after the drain and
before the check. The checker must then report them missing and ``drill run`` must exit
non-zero. This is a harness feature run as an operator with database access would; the
importer has no code path for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

KINDS = ("delete-products",)
MAX_COUNT = 1_000_000


class SabotageError(ValueError):
    """The --sabotage value is not ``kind=N`` with a known kind, or it could not be carried out."""


@dataclass(frozen=True)
class Sabotage:
    kind: str
    count: int

    def __str__(self) -> str:
        return f"{self.kind}={self.count}"


def parse_sabotage(text: str) -> Sabotage:
    match = re.fullmatch(r"\s*([a-z-]+)\s*=\s*(\d+)\s*", text)
    if match is None or match.group(1) not in KINDS:
        raise SabotageError(f"--sabotage takes KIND=N with KIND one of {', '.join(KINDS)}; got {text!r}")
    count = int(match.group(2))
    if not 1 <= count <= MAX_COUNT:
        raise SabotageError(f"--sabotage count must be 1..{MAX_COUNT}, got {count}")
    return Sabotage(match.group(1), count)


async def apply_sabotage(sabotage: Sabotage, database_url: str, companies: Sequence[str]) -> int:
    """Carry it out; the number of rows actually deleted (fewer when the run imported fewer)."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        status = await conn.execute(
            """
            DELETE FROM products
             WHERE id IN (SELECT id FROM products WHERE company_id = ANY($1::uuid[]) ORDER BY id LIMIT $2)
            """,
            [UUID(c) for c in companies],
            sabotage.count,
            timeout=60,
        )
    except asyncpg.PostgresError as exc:
        raise SabotageError(f"{sabotage}: {exc}") from exc
    finally:
        await conn.close(timeout=10)
    return int(status.split()[-1])
