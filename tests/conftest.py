"""Shared fixtures: real services started through lab.stack, stopped at the end even on failure.

Session-scoped, each started on first use only (a unit-test run starts nothing):

* ``postgres``  PostgresServer with the importer's migrations applied (``.database_url``)
* ``redis``     RedisServer with AOF (``.url``, ``.client()``)
* ``s3``        moto_server with the images bucket (``.endpoint_url``, ``.bucket``, ``.client()``)
* ``provider``  the fake provider server (``.url``)
* ``stack``     a whole Stack (its own Postgres, Redis, S3, provider, importer API; no worker
                and no background reconciler, so each test decides which run). Function-scoped
                view of one session stack: workers a test starts are stopped when it ends.
* ``workers``   WorkerFactory on ``stack``: ``workers.start(env=..., worker_id=...)``, ``workers.kill(h, sig)``

Everything lives in one temporary directory the ``postgres`` account can enter; set
DRILL_KEEP_TEST_DIRS=1 to keep its data and logs after the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.stack.ports import PortAllocator
from lab.stack.postgres import PostgresServer
from lab.stack.provider import FakeProvider
from lab.stack.redis import RedisServer
from lab.stack.s3 import MotoS3
from lab.stack.stack import Stack
from tests.support.services import (
    TEST_STACK_ENV,
    WORKER_STOP_TIMEOUT,
    WorkerFactory,
    make_stack_root,
    migrate,
    remove_stack_root,
    running,
    running_stack,
)


@pytest.fixture(scope="session")
def stack_root() -> Iterator[Path]:
    root = make_stack_root()
    try:
        yield root
    finally:
        remove_stack_root(root)


@pytest.fixture(scope="session")
def service_ports() -> PortAllocator:
    return PortAllocator()


@pytest.fixture(scope="session")
def postgres(stack_root: Path, service_ports: PortAllocator) -> Iterator[PostgresServer]:
    logs = stack_root / "logs"
    with running(PostgresServer(stack_root / "postgres", log_dir=logs, ports=service_ports)) as server:
        migrate(server.database_url, logs)
        yield server


@pytest.fixture(scope="session")
def redis(stack_root: Path, service_ports: PortAllocator) -> Iterator[RedisServer]:
    with running(RedisServer(stack_root / "redis", log_dir=stack_root / "logs", ports=service_ports)) as server:
        yield server


@pytest.fixture(scope="session")
def s3(stack_root: Path, service_ports: PortAllocator) -> Iterator[MotoS3]:
    with running(MotoS3(log_dir=stack_root / "logs", ports=service_ports)) as server:
        yield server


@pytest.fixture(scope="session")
def provider(stack_root: Path, service_ports: PortAllocator) -> Iterator[FakeProvider]:
    with running(FakeProvider(log_dir=stack_root / "logs", ports=service_ports)) as server:
        yield server


@pytest.fixture(scope="session")
def session_stack(stack_root: Path) -> Iterator[Stack]:
    with running_stack(stack_root / "stack", workers=0, reconciler=False, env_overrides=dict(TEST_STACK_ENV)) as stack:
        yield stack


@pytest.fixture
def stack(session_stack: Stack) -> Iterator[Stack]:
    """The session's stack; every worker started during the test is stopped after it."""
    try:
        yield session_stack
    finally:
        live = session_stack.live_workers()
        if live:
            session_stack.stop_workers(live, timeout=WORKER_STOP_TIMEOUT)


@pytest.fixture
def workers(stack: Stack) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(stack)
    try:
        yield factory
    finally:
        factory.stop_all()
