"""The local stack for real: Postgres, Redis and moto started, used, restarted, and left behind clean.

Plus the whole thing through the CLI: ``drill up`` → ``drill status`` → ``drill down``, run as
subprocesses exactly as a person (or CI) runs them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from lab.stack.errors import ComponentStartError
from lab.stack.info import load_info
from lab.stack.ports import PortAllocator
from lab.stack.postgres import PostgresServer
from lab.stack.process import ManagedProcess
from lab.stack.provider import FakeProvider
from lab.stack.redis import RedisServer
from lab.stack.s3 import MotoS3
from lab.stack.stack import Stack
from tests.support.services import WorkerFactory, make_stack_root, remove_stack_root

pytestmark = pytest.mark.integration

DRILL_TIMEOUT = 240


@pytest.fixture
def root() -> Iterator[Path]:
    path = make_stack_root("drill-stack-test-")
    try:
        yield path
    finally:
        remove_stack_root(path)


def processes_under(path: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions ``path``: what a leak would look like."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(path) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def group_of(process: ManagedProcess) -> set[int]:
    return {p.pid for p in process.group_members()}


async def test_postgres_redis_and_s3_start_serve_restart_and_leave_nothing(root: Path) -> None:
    ports = PortAllocator()
    logs = root / "logs"
    postgres = PostgresServer(root / "postgres", log_dir=logs, ports=ports)
    redis = RedisServer(root / "redis", log_dir=logs, ports=ports)
    s3 = MotoS3(log_dir=logs, ports=ports, bucket="drill-test")
    components = (postgres, redis, s3)
    try:
        for component in components:
            component.start()
        assert len({postgres.port, redis.port, s3.port}) == 3

        # Postgres: the application role over TCP with its password; never running as root.
        conn = await asyncpg.connect(postgres.database_url)
        try:
            await conn.execute("CREATE TABLE survives (v text)")
            await conn.execute("INSERT INTO survives VALUES ('before restart')")
        finally:
            await conn.close()
        assert postgres.pid is not None
        assert psutil.Process(postgres.pid).uids().effective != 0

        # Redis: a graceful restart keeps everything; a SIGKILL keeps what AOF fsynced (~1 s).
        with redis.client() as client:
            client.set("graceful", "kept")
        redis.restart()
        with redis.client() as client:
            assert client.get("graceful") == b"kept"
            client.set("hard", "kept too")
        await asyncio.sleep(1.5)  # appendfsync everysec: past one fsync
        redis.restart(hard=True)
        with redis.client() as client:
            assert client.get("hard") == b"kept too"
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}

        # Postgres restarts on the same port with its data, gracefully and after a crash.
        port = postgres.port
        postgres.restart()
        postgres.restart(hard=True)
        assert postgres.port == port
        conn = await asyncpg.connect(postgres.database_url)
        try:
            assert await conn.fetchval("SELECT v FROM survives") == "before restart"
        finally:
            await conn.close()

        # S3: the bucket exists; objects round-trip.
        client = s3.client()
        client.put_object(Bucket="drill-test", Key="a/b", Body=b"payload")
        assert client.get_object(Bucket="drill-test", Key="a/b")["Body"].read() == b"payload"
    finally:
        for component in reversed(components):
            component.stop()
    for component in components:
        assert component.process is not None
        assert not component.process.is_alive()
        assert component.process.group_members() == [], f"{component.name} left children behind"
    assert processes_under(root) == []


def test_a_component_that_dies_at_start_is_named_with_its_log(root: Path) -> None:
    redis = RedisServer(root / "redis", log_dir=root / "logs", ports=PortAllocator(), extra_config={"bogus": "x"})
    with pytest.raises(ComponentStartError) as caught:
        redis.start()
    message = str(caught.value)
    assert caught.value.component == "redis"
    assert "exited" in message and "bogus" in message, message
    assert processes_under(root) == []


async def test_session_fixtures_serve(
    postgres: PostgresServer, redis: RedisServer, s3: MotoS3, provider: FakeProvider
) -> None:
    conn = await asyncpg.connect(postgres.database_url)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
    finally:
        await conn.close()
    assert versions, "the importer's migrations were applied"
    with redis.client() as client:
        assert client.ping()
    assert s3.client().head_bucket(Bucket=s3.bucket)
    async with httpx.AsyncClient(base_url=provider.url, timeout=5) as http:
        assert (await http.get("/admin/health")).status_code == 200


def test_full_stack_workers_start_with_overrides_and_die_as_told(stack: Stack, workers: WorkerFactory) -> None:
    assert httpx.get(f"{stack.api_url}/healthz", timeout=5).status_code == 200
    info = load_info(stack.dir.path)
    assert info is not None and info.state == "running"
    assert {"postgres", "redis", "s3", "provider", "api"} <= {p.name for p in info.processes}

    killed = workers.start(env={"IMPORTER_LEASE_SECONDS": "2"})
    graceful = workers.start(worker_id="graceful-one")
    assert killed.is_registered() and graceful.is_registered()
    assert killed.env_overrides == {"IMPORTER_LEASE_SECONDS": "2"}
    assert load_info(stack.dir.path).process("graceful-one") is not None  # type: ignore[union-attr]

    assert workers.kill(killed, signal.SIGKILL)
    assert not killed.alive() and killed.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while killed.is_registered() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not killed.is_registered(), "a dead worker's registration expires after its lease"

    graceful.kill(signal.SIGTERM)
    assert graceful.wait(timeout=30) == 0, graceful.log_tail()
    assert not graceful.is_registered(), "a worker stopping cleanly removes its registration"


def drill(*args: str, timeout: float = DRILL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "drill"
    argv = [str(script), *args] if script.exists() else [sys.executable, "-m", "lab.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_drill_up_status_down_leaves_no_process(root: Path) -> None:
    run_dir = root / "drill"
    up = drill("up", "--workers", "2", "--run-dir", str(run_dir), "--env", "IMPORTER_SHUTDOWN_GRACE_SECONDS=5")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        for component in ("postgres", "redis", "s3", "provider", "migrate", "api", "reconciler", "worker-1"):
            assert f"  {component}" in up.stdout, up.stdout
        info = load_info(run_dir)
        assert info is not None and info.state == "running"
        assert info.operator_token in up.stdout and str(info.api_url) in up.stdout
        assert info.env_overrides == {"IMPORTER_SHUTDOWN_GRACE_SECONDS": "5"}
        names = {p.name for p in info.processes}
        assert names == {"postgres", "redis", "s3", "provider", "api", "reconciler", "worker-1", "worker-2"}
        assert httpx.get(f"{info.api_url}/healthz", timeout=5).status_code == 200

        status = drill("status", "--run-dir", str(run_dir), "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        assert all(p["alive"] for p in json.loads(status.stdout)["processes"])

        again = drill("up", "--run-dir", str(run_dir))
        assert again.returncode != 0
        assert "already running" in again.stderr, again.stdout + again.stderr
    finally:
        down = drill("down", "--run-dir", str(run_dir))
    assert down.returncode == 0, down.stdout + down.stderr
    info = load_info(run_dir)
    assert info is not None and info.state == "stopped"
    for record in info.processes:
        assert not ManagedProcess.attach(record).is_alive(), f"{record.name} survived drill down"
    assert processes_under(run_dir) == []

    twice = drill("down", "--run-dir", str(run_dir))
    assert twice.returncode == 0 and "nothing to stop" in twice.stdout
    after = drill("status", "--run-dir", str(run_dir))
    assert after.returncode == 1 and "dead" in after.stdout
