"""Port picking: outside the ephemeral range, never the same port twice, never a busy one."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from lab.stack.errors import PortUnavailableError
from lab.stack.ports import (
    LINUX_DEFAULT_EPHEMERAL,
    PortAllocator,
    free_port,
    is_port_free,
    ranges_outside,
    read_ephemeral_range,
)


@pytest.mark.parametrize(
    ("ephemeral", "low", "high", "expected"),
    [
        ((32768, 60999), 20000, 65535, [(20000, 32767), (61000, 65535)]),
        ((10000, 65535), 20000, 65535, []),
        ((1024, 19999), 20000, 65535, [(20000, 65535)]),
        ((40000, 50000), 45000, 46000, []),
        ((40000, 50000), 20000, 45000, [(20000, 39999)]),
    ],
)
def test_ranges_outside_the_ephemeral_range(
    ephemeral: tuple[int, int], low: int, high: int, expected: list[tuple[int, int]]
) -> None:
    assert ranges_outside(ephemeral, low, high) == expected


def test_ephemeral_range_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    good = tmp_path / "range"
    good.write_text("35000\t45000\n")
    assert read_ephemeral_range(good) == (35000, 45000)
    bad = tmp_path / "bad"
    bad.write_text("nonsense")
    assert read_ephemeral_range(bad) == LINUX_DEFAULT_EPHEMERAL
    assert read_ephemeral_range(tmp_path / "missing") == LINUX_DEFAULT_EPHEMERAL


def test_allocator_never_hands_out_a_port_twice_and_skips_busy_ones() -> None:
    busy = {20001, 20003}
    allocator = PortAllocator(
        ranges=[(20000, 20005)], is_free=lambda port, _host: port not in busy, rng=random.Random(7)
    )
    ports = [allocator.allocate() for _ in range(4)]
    assert sorted(ports) == [20000, 20002, 20004, 20005]
    with pytest.raises(PortUnavailableError, match="no free port"):
        allocator.allocate()
    allocator.release(20002)
    assert allocator.allocate() == 20002


def test_allocator_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        PortAllocator(host="0.0.0.0")


def test_a_port_someone_listens_on_is_not_free_and_not_picked() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        assert not is_port_free(taken)
        allocator = PortAllocator(ranges=[(taken, taken)], max_attempts=20)
        with pytest.raises(PortUnavailableError):
            allocator.allocate()


def test_free_port_is_bindable_and_outside_the_ephemeral_range() -> None:
    low, high = read_ephemeral_range()
    port = free_port()
    assert not low <= port <= high
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
