"""Talking to a running importer and fake provider the way an operator or a client would."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@dataclass
class Tenant:
    id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class ImporterApi:
    def __init__(self, api_url: str, operator_token: str) -> None:
        self.http = httpx.AsyncClient(base_url=api_url, timeout=30)
        self.operator_headers = {"Authorization": f"Bearer {operator_token}"}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def create_company(self, name: str = "acme", tier: str = "PRO", vip: bool = False) -> Tenant:
        r = await self.http.post(
            "/v1/ops/companies", json={"name": name, "tier": tier, "vip": vip}, headers=self.operator_headers
        )
        r.raise_for_status()
        body = r.json()
        return Tenant(id=body["id"], api_key=body["api_key"])

    async def submit(self, tenant: Tenant, provider: str, store_id: str, include_images: bool = True) -> str:
        r = await self.http.post(
            "/v1/imports",
            json={"provider": provider, "store_id": store_id, "include_images": include_images},
            headers=tenant.headers,
        )
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    async def get(self, tenant: Tenant, job_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/v1/imports/{job_id}", headers=tenant.headers)
        r.raise_for_status()
        return dict(r.json())

    async def wait_terminal(self, tenant: Tenant, job_id: str, *, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = await self.get(tenant, job_id)
            if last["status"] in TERMINAL:
                return last
            await asyncio.sleep(0.25)
        raise AssertionError(f"job {job_id} not terminal after {timeout}s: {last}")


class FakeProvider:
    def __init__(self, provider_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=provider_url, timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def create_store(self, dialect: str = "roastify", products: int = 10, **options: Any) -> str:
        r = await self.http.post("/admin/stores", json={"dialect": dialect, "products": products, **options})
        assert r.status_code in (200, 201), r.text
        return str(r.json()["store_id"])

    async def expected(self, store_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/admin/stores/{store_id}/expected")
        r.raise_for_status()
        return dict(r.json())

    async def stats(self, store_id: str | None = None) -> dict[str, Any]:
        r = await self.http.get("/admin/stats", params={"store_id": store_id} if store_id else None)
        r.raise_for_status()
        return dict(r.json())

    async def set_faults(self, **faults: Any) -> None:
        r = await self.http.post("/admin/faults", json=faults)
        r.raise_for_status()

    async def clear_faults(self) -> None:
        r = await self.http.delete("/admin/faults")
        r.raise_for_status()
