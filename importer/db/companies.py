"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from uuid import UUID

from importer.models import Company, Tier

_KEY_PREFIX = "pik_"


def hash_api_key(key: str) -> str:
    """SHA-256 is enough here: keys are 256-bit random tokens, never guessable passwords."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return _KEY_PREFIX + secrets.token_urlsafe(32)


async def create(conn: Any, *, name: str, tier: Tier, vip: bool) -> tuple[Company, str]:
    """Create a company and its first API key; the plain key is returned once and never stored."""
    key = new_api_key()
    async with conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO companies (name, tier, vip) VALUES ($1, $2, $3) RETURNING id, name, tier, vip",
            name,
            tier.value,
            vip,
        )
        await conn.execute(
            "INSERT INTO api_keys (company_id, key_hash, key_prefix) VALUES ($1, $2, $3)",
            row["id"],
            hash_api_key(key),
            key[:10],
        )
    return _company(row), key


async def by_api_key(conn: Any, key: str) -> Company | None:
    row = await conn.fetchrow(
        """
        SELECT c.id, c.name, c.tier, c.vip FROM api_keys k JOIN companies c ON c.id = k.company_id
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL
        """,
        hash_api_key(key),
    )
    return _company(row) if row else None


async def get(conn: Any, company_id: UUID) -> Company | None:
    row = await conn.fetchrow("SELECT id, name, tier, vip FROM companies WHERE id = $1", company_id)
    return _company(row) if row else None


def _company(row: Any) -> Company:
    return Company(id=row["id"], name=row["name"], tier=Tier(row["tier"]), vip=row["vip"])
