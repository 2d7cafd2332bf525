"""One HA stack for every chaos drill test: Redis primary + 2 replicas + 3 Sentinels, Toxiproxy.

Shared because starting it costs ~15 s and every experiment leaves it as it found it (that is
what its rollbacks are for, and each test asserts it). It runs the chaos profile, exactly as
``drill chaos`` does. When the session ends, the stack is stopped, anything a ``drill chaos
--attach`` subprocess recorded in stack.json is stopped too, and nothing of it may be left
running (checked with psutil: pids recorded in stack.json, and any process naming the stack's
directory on its command line).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from chaos.profile import BASE_WORKERS, CHAOS_ENV, SENTINEL_DOWN_AFTER_MS, SENTINEL_FAILOVER_TIMEOUT_MS
from chaos.target import OwnedTarget
from lab.stack.ha import HaStack
from lab.stack.info import load_info
from lab.stack.recorded import live_records, stop_recorded
from lab.stack.stack import Stack, StackConfig
from tests.support.services import make_stack_root, remove_stack_root


def leftovers(root: Path) -> list[str]:
    """Live processes of the stack: recorded in its stack.json, or naming its directory."""
    found = []
    info = load_info(root / "stack")
    if info is not None:
        found += [f"{r.name} (pid {r.pid})" for r in live_records(info)]
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(str(root) in p for p in proc.info["cmdline"] or []):
                found.append(f"pid {proc.pid}: {' '.join(proc.info['cmdline'])[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(scope="session")
def ha_root() -> Iterator[Path]:
    root = make_stack_root("drill-chaos-test-")
    try:
        yield root
    finally:
        remove_stack_root(root)


@pytest.fixture(scope="session")
def ha_stack(ha_root: Path) -> Iterator[HaStack]:
    config = StackConfig(
        run_dir=ha_root / "stack",
        workers=BASE_WORKERS,
        topology="ha",
        env_overrides=dict(CHAOS_ENV),
        sentinel_down_after_ms=SENTINEL_DOWN_AFTER_MS,
        sentinel_failover_timeout_ms=SENTINEL_FAILOVER_TIMEOUT_MS,
    )
    stack = Stack(config)
    assert isinstance(stack, HaStack)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        info = load_info(ha_root / "stack")
        if info is not None:  # workers a `drill chaos --attach` subprocess started and recorded
            stop_recorded(live_records(info))
        left = leftovers(ha_root)
        assert not left, f"left running after the chaos drills: {left}"


@pytest.fixture
def target(ha_stack: HaStack) -> OwnedTarget:
    return OwnedTarget(ha_stack)
