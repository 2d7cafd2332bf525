"""Progress lines while a drill runs: which experiment, which phase, how long it has been going.

A chaos suite runs for many minutes with nothing visible happening between faults; one line
per step, each stamped with the time since the drill started, tells the person watching that
it is alive and where it is.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self._stream = stream
        self._quiet = quiet
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.context = ""  # "redis-failover #1/3"
        self.phase = ""  # "method", "rollbacks", ...

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def __call__(self, message: str) -> None:
        if self._quiet:
            return
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.elapsed))
        where = " ".join(part for part in (self.context, self.phase) if part)
        line = f"[{stamp}] {where + ': ' if where else ''}{message}"
        with self._lock:
            stream = self._stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()
