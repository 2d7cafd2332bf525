"""The observer keeps recording when its sources fail, and stops when told or when its time is up."""

from __future__ import annotations

import asyncio
import csv
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lab.fake_provider.stats import Outcome, Stats
from lab.observer import Observer, ObserverConfig, observing
from lab.probes import ProbeError, RedisTarget, count_keys, parse_provider_stats
from lab.samples import SAMPLE_COLUMNS, SamplesWriter, read_samples


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


async def test_sources_that_are_down_become_gaps_not_crashes(tmp_path: Path) -> None:
    port = closed_port()
    config = ObserverConfig(
        run_started_at=datetime.now(UTC),
        redis=RedisTarget(url=f"redis://127.0.0.1:{port}/0"),
        database_url=f"postgresql://nobody@127.0.0.1:{port}/nothing",
        provider_url=f"http://127.0.0.1:{port}",
        interval=0.1,
        source_timeout=1.0,
    )
    path = tmp_path / "samples.csv"
    observer = Observer(config, path)
    observer.start()
    for _ in range(100):  # until three ticks are on disk, at most 10 s
        await asyncio.sleep(0.1)
        if path.exists() and len(rows(path)) >= 3:
            break
    stats = await observer.stop()
    recorded = rows(path)
    assert len(recorded) >= 3 and stats.ticks == len(recorded)
    assert stats.stopped_by == "stop"
    assert set(stats.failures_by_source) == {"redis", "postgres", "provider"}
    for row in recorded:
        assert row["ok"] == "0"
        assert "redis: " in row["errors"] and "postgres: " in row["errors"] and "provider: " in row["errors"]
        assert row["waiting"] == "" and row["jobs_completed"] == "" and row["provider_api_requests"] == ""


async def test_the_loop_is_bounded_by_max_duration(tmp_path: Path) -> None:
    config = ObserverConfig(run_started_at=datetime.now(UTC), interval=0.05, max_duration=0.3)
    path = tmp_path / "samples.csv"
    async with observing(config, path) as observer:
        await asyncio.sleep(0.6)  # twice max_duration: the loop must have ended by itself
        assert observer.stats.stopped_by in ("max_duration", "max_ticks")
    assert 3 <= observer.stats.ticks <= 8
    assert all(row["ok"] == "1" for row in rows(path))  # no source configured: nothing failed


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        ObserverConfig(run_started_at=datetime.now(UTC), interval=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ObserverConfig(run_started_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="not both"):
        RedisTarget(url="redis://127.0.0.1:1/0", sentinels=(("127.0.0.1", 26379),))
    with pytest.raises(ValueError, match="neither"):
        RedisTarget()
    target = RedisTarget.parse_sentinels("127.0.0.1:26379, 127.0.0.1:26380", "primary")
    assert target.sentinels == (("127.0.0.1", 26379), ("127.0.0.1", 26380)) and target.master == "primary"


def test_provider_stats_of_the_fake_provider_parse() -> None:
    stats = Stats()
    stats.record(Outcome(store_id="s", kind="api", path="/p"), 200)
    limited = Outcome(store_id="s", kind="api", path="/p")
    limited.rate_limited = True
    stats.record(limited, 429)
    stats.record(Outcome(store_id="s", kind="image", path="/i"), 200)
    counts = parse_provider_stats(stats.to_json())
    assert (counts.api_requests, counts.image_requests, counts.rate_limited) == (2, 1, 1)
    assert counts.responses == {"200": 2, "429": 1}


def test_provider_stats_of_another_shape_are_an_error() -> None:
    with pytest.raises(ProbeError, match="no known counter"):
        parse_provider_stats({"totals": {"requests": 3}})
    with pytest.raises(ProbeError):
        parse_provider_stats([1, 2])


class _FakeScan:
    def __init__(self, pages: list[list[str]], endless: bool = False) -> None:
        self.pages, self.endless, self.calls = pages, endless, 0

    async def scan(self, cursor: int, match: str, count: int) -> tuple[int, list[str]]:
        page = self.pages[self.calls % len(self.pages)]
        self.calls += 1
        done = not self.endless and self.calls == len(self.pages)
        return (0 if done else self.calls), page


async def test_scan_counts_each_key_once_and_stops_at_its_bound() -> None:
    fake: Any = _FakeScan([["a", "b"], ["b", "c"], []])
    assert await count_keys(fake, "x*", batch=10, max_iterations=100) == (3, False)
    endless: Any = _FakeScan([["a"]], endless=True)
    assert await count_keys(endless, "x*", batch=10, max_iterations=5) == (1, True)
    assert endless.calls == 5


def test_samples_round_trip_with_gaps(tmp_path: Path) -> None:
    writer = SamplesWriter(tmp_path / "samples.csv")
    writer.write({"at": datetime(2025, 1, 1, tzinfo=UTC), "elapsed_s": 0, "ok": 1, "waiting": 4, "jobs_completed": 2})
    writer.write({"at": datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC), "elapsed_s": 1, "ok": 0, "errors": "redis: down"})
    writer.close()
    with pytest.raises(Exception, match="unknown sample columns"):
        SamplesWriter(tmp_path / "other.csv").write({"bogus": 1})
    frame = read_samples(tmp_path)
    assert frame is not None and list(frame.columns)[: len(SAMPLE_COLUMNS)] == list(SAMPLE_COLUMNS)
    assert frame["waiting"].tolist()[0] == 4.0 and frame["waiting"].isna().tolist() == [False, True]
    assert frame["errors"].fillna("").tolist() == ["", "redis: down"]
