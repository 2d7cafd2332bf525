"""Apply the numbered SQL files in ``migrations/`` exactly once each, in order.

Hand-written on purpose: the schema is plain SQL and the driver is asyncpg; the migration tools
that exist (alembic, yoyo) would pull in SQLAlchemy or a second, synchronous driver only to run
ordered files inside a transaction. An advisory lock makes concurrent ``importer migrate`` calls
(several containers starting at once) safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import asyncpg

_LOCK_ID = 0x1D_0A17  # arbitrary, constant: the advisory lock every migrator takes


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def load_migrations() -> list[Migration]:
    folder = resources.files("importer.db") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text("utf-8")) for f in files]


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied: list[str] = []
            for migration in load_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", migration.version)
                applied.append(migration.version)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    finally:
        await conn.close()
