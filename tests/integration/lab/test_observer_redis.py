"""The observer against a real redis-server: arq's keys counted, a dead Redis recorded as a gap.

Starts its own throwaway redis-server on a free loopback port (no lab/stack needed); skipped
where the binary is missing. Postgres and the provider are left out: the gap of one source
must not blank the others, which the unit tests cover with unreachable addresses.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis

from lab.observer import Observer, ObserverConfig
from lab.probes import RedisTarget
from lab.samples import read_samples

pytestmark = pytest.mark.integration
REDIS = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS is not None
        self.proc = subprocess.Popen(
            [
                REDIS,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis(port=self.port, socket_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return
            except OSError:
                time.sleep(0.05)
            except Exception:  # redis.ConnectionError is not an OSError
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 5 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    server = RedisProcess(tmp_path, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def wait_for_rows(observer: Observer, count: int, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while observer.stats.ticks < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"observer wrote {observer.stats.ticks} ticks, wanted {count}")
        await asyncio.sleep(0.05)


async def test_counts_arq_keys_and_records_an_outage_as_a_gap(redis_server: RedisProcess, tmp_path: Path) -> None:
    client = Redis(port=redis_server.port, decode_responses=True)
    now_ms = int(time.time() * 1000)
    client.zadd("arq:queue", {"due-1": now_ms - 5000, "due-2": now_ms - 1000, "running": now_ms - 9000})
    client.zadd("arq:queue", {"later": now_ms + 600_000})
    client.set("arq:in-progress:running", "1", ex=600)
    for worker in ("w1", "w2"):
        client.set(f"importer:workers:{worker}", "{}", ex=600)

    path = tmp_path / "samples.csv"
    config = ObserverConfig(
        run_started_at=datetime.now(UTC),
        redis=RedisTarget(url=f"redis://127.0.0.1:{redis_server.port}/0"),
        interval=0.1,
        source_timeout=0.5,
        scan_batch=1,  # force several SCAN round trips
    )
    observer = Observer(config, path)
    observer.start()
    await wait_for_rows(observer, 3)
    redis_server.stop()
    before_outage = observer.stats.ticks
    await wait_for_rows(observer, before_outage + 3)
    redis_server.start()
    client = Redis(port=redis_server.port, decode_responses=True)
    client.set("importer:workers:w3", "{}", ex=600)
    recovered_from = observer.stats.ticks
    await wait_for_rows(observer, recovered_from + 4)
    stats = await observer.stop()

    frame = read_samples(tmp_path)
    assert frame is not None and len(frame) == stats.ticks
    first = frame.iloc[0]
    assert (first["queue_due"], first["active"], first["waiting"], first["deferred"], first["workers_alive"]) == (
        3,
        1,
        2,
        1,
        2,
    )
    gaps = frame[frame["ok"] == 0]
    assert len(gaps) >= 2 and gaps["waiting"].isna().all()
    assert gaps["errors"].str.startswith("redis: ").all()
    last = frame.iloc[-1]
    assert last["ok"] == 1 and last["workers_alive"] == 1  # a fresh Redis after the "failover"
    assert stats.failures_by_source["redis"] == len(gaps)
