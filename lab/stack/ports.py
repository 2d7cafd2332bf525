"""Free TCP ports on loopback, picked at run time and kept out of the kernel's ephemeral range.

Why not simply bind port 0: the kernel answers with an ephemeral port, the same range it
draws client source ports from. A stack keeps its ports for hours and re-binds them after a
restart (Redis and Postgres come back on the port the importer was configured with); a port
from the ephemeral range can meanwhile be taken by any outgoing connection, and the restart
then fails with "address in use". Ports below/above the ephemeral range are only ever taken
by servers that bind them on purpose, which the bind test below detects.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.stack.errors import PortUnavailableError

LOOPBACK = "127.0.0.1"
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_DEFAULT_EPHEMERAL = (32768, 60999)
# Below 20000 live many well-known defaults (5432, 6379, 8000, 8080, 9000, ...).
SEARCH_LOW = 20000
SEARCH_HIGH = 65535
MAX_ATTEMPTS = 500

PortRange = tuple[int, int]


def read_ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> PortRange:
    """The kernel's ephemeral range; Linux's default when the file is absent or odd."""
    try:
        low_text, high_text = path.read_text().split()
        low, high = int(low_text), int(high_text)
    except (OSError, ValueError):
        return LINUX_DEFAULT_EPHEMERAL
    if not 0 < low <= high <= 65535:
        return LINUX_DEFAULT_EPHEMERAL
    return low, high


def ranges_outside(ephemeral: PortRange, low: int = SEARCH_LOW, high: int = SEARCH_HIGH) -> list[PortRange]:
    """The parts of ``[low, high]`` that do not overlap ``ephemeral`` (inclusive bounds)."""
    if low > high:
        raise ValueError(f"empty search range {low}..{high}")
    eph_low, eph_high = ephemeral
    parts: list[PortRange] = []
    if low < eph_low:
        parts.append((low, min(high, eph_low - 1)))
    if high > eph_high:
        parts.append((max(low, eph_high + 1), high))
    return [(a, b) for a, b in parts if a <= b]


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when a listening socket could bind ``host:port`` right now.

    SO_REUSEADDR is left off on purpose: it would report a port with lingering TIME_WAIT
    connections as free, which is the case we want to stay away from.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out distinct free ports for one stack.

    A port handed out is remembered until released, so two components started a few
    milliseconds apart (before either has bound its port) never get the same one.
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        ranges: Sequence[PortRange] | None = None,
        *,
        is_free: Callable[[int, str], bool] = is_port_free,
        rng: random.Random | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if host != LOOPBACK:
            raise ValueError(f"the stack listens on {LOOPBACK} only, not {host!r}")
        self.host = host
        self.ranges = list(ranges) if ranges is not None else ranges_outside(read_ephemeral_range())
        if not self.ranges:
            raise ValueError("no port range to search: the ephemeral range covers the whole search range")
        self._is_free = is_free
        self._rng = rng or random.Random()
        self._max_attempts = max_attempts
        self._handed_out: set[int] = set()
        self._lock = threading.Lock()

    @property
    def handed_out(self) -> frozenset[int]:
        return frozenset(self._handed_out)

    def allocate(self) -> int:
        """A port that binds now and was not handed out before; random to spread parallel stacks."""
        weights = [b - a + 1 for a, b in self.ranges]
        with self._lock:
            for _ in range(self._max_attempts):
                low, high = self._rng.choices(self.ranges, weights=weights)[0]
                port = self._rng.randint(low, high)
                if port in self._handed_out or not self._is_free(port, self.host):
                    continue
                self._handed_out.add(port)
                return port
        raise PortUnavailableError(f"no free port on {self.host} in {self.ranges} after {self._max_attempts} attempts")

    def release(self, port: int) -> None:
        with self._lock:
            self._handed_out.discard(port)


def free_port(host: str = LOOPBACK) -> int:
    """One free port outside the ephemeral range, for callers that need just one."""
    return PortAllocator(host).allocate()
