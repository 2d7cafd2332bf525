"""The fake commerce provider (``python -m lab.fake_provider``) as a stack component."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from lab.stack.component import LAYER_SERVICE, Component, base_environment
from lab.stack.ports import PortAllocator

HEALTH_PATH = "/admin/health"


class FakeProvider(Component):
    role = "provider"
    layer = LAYER_SERVICE
    stop_timeout = 10.0
    start_timeout = 45.0

    def __init__(
        self,
        *,
        log_dir: Path,
        ports: PortAllocator | None = None,
        port: int | None = None,
        name: str = "provider",
        extra_args: Sequence[str] = (),
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)
        self.extra_args = list(extra_args)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "lab.fake_provider",
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        return base_environment()

    def probe(self) -> str | None:
        response = httpx.get(f"{self.url}{HEALTH_PATH}", timeout=2.0)
        return None if response.status_code == 200 else f"status {response.status_code}"
