"""The importer's processes (docs/contracts.md): migrate once, the API, N workers, the reconciler.

The harness runs them exactly as an operator would: the ``importer`` console script with
``IMPORTER_*`` variables. The caller's own ``IMPORTER_*`` variables are not inherited (a
developer's exported setting would silently change a drill); drills change settings through
explicit overrides, which stack.json records.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from redis import Redis
from redis.exceptions import RedisError

from lab.stack.binaries import find_console_script
from lab.stack.component import LAYER_APP, Component, base_environment
from lab.stack.errors import ComponentStartError
from lab.stack.ports import PortAllocator
from lab.stack.process import log_marker, read_tail
from lab.stack.s3 import CREDENTIALS

WORKER_KEY_PREFIX = "importer:workers:"  # docs/contracts.md, "Redis keys"
MIGRATE_TIMEOUT = 180.0
DEFAULT_SHUTDOWN_GRACE = 30.0  # importer default of IMPORTER_SHUTDOWN_GRACE_SECONDS
RECONCILER_SETTLE_SECONDS = 1.5


@dataclass(frozen=True)
class ImporterEndpoints:
    """Where the importer finds everything it depends on; the stack fills it in."""

    database_url: str
    s3_endpoint: str
    s3_bucket: str
    provider_url: str
    operator_token: str
    redis_url: str | None = None
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str = "mymaster"
    environment: str = "drill"
    extra: Mapping[str, str] = field(default_factory=dict)


def importer_environment(
    endpoints: ImporterEndpoints, overrides: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The full environment of an importer process: base (minus IMPORTER_*), contract, overrides."""
    source = base_environment() if base is None else dict(base)
    env = {k: v for k, v in source.items() if not k.startswith("IMPORTER_")}
    env.update(CREDENTIALS)
    env.update(
        {
            "IMPORTER_ENVIRONMENT": endpoints.environment,
            "IMPORTER_DATABASE_URL": endpoints.database_url,
            "IMPORTER_S3_ENDPOINT_URL": endpoints.s3_endpoint,
            "IMPORTER_S3_BUCKET": endpoints.s3_bucket,
            "IMPORTER_OPERATOR_TOKEN": endpoints.operator_token,
            "IMPORTER_ROASTIFY_BASE_URL": f"{endpoints.provider_url}/roastify",
            "IMPORTER_SHOPIFY_BASE_URL": f"{endpoints.provider_url}/shopify",
            "IMPORTER_IMAGE_ALLOWED_HOSTS": "127.0.0.1",
            # The fake provider and its CDN live on loopback: allowed explicitly, by host and port.
            "IMPORTER_EGRESS_ALLOWED_PRIVATE": urlsplit(endpoints.provider_url).netloc,
        }
    )
    if endpoints.redis_sentinels:
        env["IMPORTER_REDIS_SENTINELS"] = ",".join(endpoints.redis_sentinels)
        env["IMPORTER_REDIS_SENTINEL_MASTER"] = endpoints.redis_sentinel_master
    elif endpoints.redis_url:
        env["IMPORTER_REDIS_URL"] = endpoints.redis_url
    else:
        raise ValueError("the importer needs either redis_url or redis_sentinels")
    env.update(endpoints.extra)
    env.update(overrides or {})
    return env


def importer_argv(*args: str) -> list[str]:
    """``importer <args>``: the console script when installed, else the module of this interpreter."""
    script = find_console_script("importer")
    if script is not None:
        return [str(script), *args]
    return [sys.executable, "-m", "importer.cli", *args]


def grace_seconds(env: Mapping[str, str]) -> float:
    try:
        return float(env.get("IMPORTER_SHUTDOWN_GRACE_SECONDS", DEFAULT_SHUTDOWN_GRACE))
    except ValueError:
        return DEFAULT_SHUTDOWN_GRACE


def run_migrations(
    env: Mapping[str, str], *, log_path: Path, cwd: Path | None = None, timeout: float = MIGRATE_TIMEOUT
) -> None:
    """``importer migrate`` to completion; its output is appended to ``log_path``."""
    argv = importer_argv("migrate")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        log.write(log_marker("process_started", process="migrate", argv=argv))
        log.flush()
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ComponentStartError(
                "migrate", f"did not finish within {timeout:.0f}s", log_path, read_tail(log_path, start=offset)
            ) from exc
    if done.returncode != 0:
        raise ComponentStartError(
            "migrate", f"exited with code {done.returncode}", log_path, read_tail(log_path, start=offset)
        )


class _ImporterProcess(Component):
    layer = LAYER_APP

    def __init__(
        self,
        name: str,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        ports: PortAllocator | None = None,
        port: int | None = None,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)
        self.env = dict(env)
        # Long enough for a worker to hand its jobs back within the configured grace.
        self.stop_timeout = grace_seconds(self.env) + 15.0

    def environment(self) -> dict[str, str]:
        return self.env


class ImporterApi(_ImporterProcess):
    role = "api"
    start_timeout = 60.0

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        ports: PortAllocator | None = None,
        port: int | None = None,
        name: str = "api",
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, env=env, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return importer_argv("api", "--host", self.host, "--port", str(self.port))

    def probe(self) -> str | None:
        response = httpx.get(f"{self.url}/healthz", timeout=3.0)
        return None if response.status_code == 200 else f"status {response.status_code}: {response.text[:200]}"


class ImporterWorker(_ImporterProcess):
    """One ``importer worker``; alive once it has registered itself in Redis."""

    role = "worker"
    start_timeout = 60.0

    def __init__(
        self,
        worker_id: str,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        redis_client: Callable[[], Redis],
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(worker_id, env=env, log_dir=log_dir, start_timeout=start_timeout)
        self.worker_id = worker_id
        self._redis_client = redis_client

    @property
    def registration_key(self) -> str:
        return f"{WORKER_KEY_PREFIX}{self.worker_id}"

    def command(self) -> list[str]:
        return importer_argv("worker", "--worker-id", self.worker_id)

    def is_registered(self) -> bool:
        with self._redis_client() as client:
            return bool(client.exists(self.registration_key))

    def probe(self) -> str | None:
        try:
            registered = self.is_registered()
        except RedisError as exc:
            return f"cannot read {self.registration_key}: {type(exc).__name__}: {exc}"
        return None if registered else f"{self.registration_key} not in Redis yet"


class ImporterReconciler(_ImporterProcess):
    """``importer reconciler``: it has no probe of its own, so "still running after a moment" it is."""

    role = "reconciler"
    start_timeout = 30.0

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        name: str = "reconciler",
        settle_seconds: float = RECONCILER_SETTLE_SECONDS,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, env=env, log_dir=log_dir, start_timeout=start_timeout)
        self.settle_seconds = settle_seconds

    def command(self) -> list[str]:
        return importer_argv("reconciler")

    def probe(self) -> str | None:
        if self.process is None or not self.process.is_alive():
            return "not running"
        started = self.process.record.started_at.timestamp()
        age = time.time() - started
        return None if age >= self.settle_seconds else f"running for {age:.1f}s, waiting {self.settle_seconds:.1f}s"
