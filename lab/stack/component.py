"""What every server of the stack has in common: one process, one log, one health probe.

A component is built (ports chosen, paths fixed), then ``start()``-ed: ``prepare`` once
(initdb, a config file), spawn, wait until ``probe`` says healthy, then ``after_ready`` once
(create a role, a bucket). ``restart`` keeps port and data, which is what chaos experiments
need: the importer's configuration must stay valid across the fault.

Subclasses only say *what* to run and *how to tell it is healthy*; composition (which
components, in which order, sharing which ports) is the stack's business, so an HA topology
can put three Redis servers, three Sentinels and a Toxiproxy together from the same parts.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from lab.stack.accounts import ServiceAccount
from lab.stack.errors import ComponentStartError
from lab.stack.ports import PortAllocator
from lab.stack.process import LOG_TAIL_CHARS, ManagedProcess, StopOutcome, read_tail
from lab.stack.waiting import GaveUpError, WaitTimeoutError, wait_until

PORT_IN_USE_MARKERS = ("address already in use", "eaddrinuse")
PORT_ATTEMPTS = 3

# Stop order: higher layers stop first (the importer before the services it talks to).
LAYER_DATA = 0
LAYER_SERVICE = 1
LAYER_APP = 2


class Component:
    """Base class of a stack server. Subclasses override ``command`` and ``probe``."""

    role: str = "component"
    layer: int = LAYER_SERVICE
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 15.0
    start_timeout: float = 60.0

    def __init__(
        self,
        name: str,
        *,
        log_dir: Path,
        ports: PortAllocator | None = None,
        port: int | None = None,
        start_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.ports = ports
        self.host = "127.0.0.1"
        self.port = port if port is not None else (ports.allocate() if ports is not None else 0)
        if start_timeout is not None:
            self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None
        # Called right after every spawn, before the health wait: the stack records the pid at
        # once, so even a `drill up` killed mid-wait leaves `drill down` a way to the process.
        self.on_spawn: Callable[[ManagedProcess], None] | None = None
        self._prepared = False
        self._ready_once = False
        self._log_offset = 0

    # --- what subclasses say ----------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> Mapping[str, str] | None:
        """The child's full environment; None inherits ours."""
        return None

    def account(self) -> ServiceAccount:
        return ServiceAccount.current()

    def working_dir(self) -> Path | None:
        return self.log_path.parent

    def prepare(self) -> None:
        """One-time set-up before the first start (data directory, config file)."""

    def probe(self) -> str | None:
        """None when healthy, else why not (shown when the wait times out)."""
        raise NotImplementedError

    def after_ready(self) -> None:
        """One-time work once healthy for the first time (roles, buckets)."""

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> ManagedProcess:
        """Start and wait until healthy; on failure nothing of it is left running."""
        if self.is_alive():
            raise ComponentStartError(self.name, f"already running as pid {self.pid}")
        if not self._prepared:
            self.prepare()
            self._prepared = True
        # A port lost to another process between picking and binding is re-picked, but only
        # before the first successful start: afterwards clients are configured with it.
        attempts = PORT_ATTEMPTS if (self.ports is not None and not self._ready_once) else 1
        for attempt in range(1, attempts + 1):
            try:
                process = self._start_once()
            except ComponentStartError as exc:
                if attempt < attempts and _port_in_use(exc.log_tail) and self.ports is not None:
                    self.ports.release(self.port)
                    self.port = self.ports.allocate()
                    self.on_port_changed()
                    continue
                raise
            break
        if not self._ready_once:
            try:
                self.after_ready()
            except Exception as exc:
                self.stop()
                raise ComponentStartError(self.name, f"set-up after start failed: {exc}", *self._tail()) from exc
            self._ready_once = True
        return process

    def on_port_changed(self) -> None:
        """Regenerate anything that embeds the port (a config file) after a re-pick."""

    def _start_once(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = ManagedProcess.spawn(
            self.name,
            self.command(),
            log_path=self.log_path,
            role=self.role,
            layer=self.layer,
            env=self.environment(),
            cwd=self.working_dir(),
            account=self.account(),
            stop_signal=self.stop_signal,
            stop_timeout=self.stop_timeout,
        )
        try:
            if self.on_spawn is not None:
                self.on_spawn(self.process)
            wait_until(
                self.probe,
                what=f"{self.name} on {self.host}:{self.port}",
                timeout=self.start_timeout,
                still_running=self._exit_reason,
            )
        except (WaitTimeoutError, GaveUpError) as exc:
            self.process.stop(signal.SIGKILL, timeout=5.0)
            raise ComponentStartError(self.name, str(exc), *self._tail()) from exc
        except BaseException:
            self.process.stop(signal.SIGKILL, timeout=5.0)
            raise
        return self.process

    def _exit_reason(self) -> str | None:
        if self.process is None or self.process.is_alive():
            return None
        code = self.process.returncode
        return f"process exited{'' if code is None else f' with code {code}'} before it became healthy"

    def _tail(self) -> tuple[Path, str]:
        return self.log_path, self.log_tail()

    def stop(self, sig: signal.Signals | None = None, timeout: float | None = None) -> StopOutcome:
        if self.process is None:
            return StopOutcome.NOT_RUNNING
        return self.process.stop(sig, timeout)

    def restart(self, *, hard: bool = False, down_for: float = 0.0) -> ManagedProcess:
        """Stop (SIGKILL to the whole group when ``hard``), stay down ``down_for`` seconds, then
        start again on the same port and data."""
        if hard:
            self.stop(signal.SIGKILL, timeout=5.0)
        else:
            self.stop()
        if down_for > 0:
            time.sleep(down_for)
        return self.start()

    # --- state ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def is_alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def is_healthy(self) -> bool:
        try:
            return self.is_alive() and self.probe() is None
        except Exception:
            return False

    def log_tail(self, max_chars: int = LOG_TAIL_CHARS) -> str:
        """The log written since the last start (earlier starts' lines are not this failure's)."""
        return read_tail(self.log_path, max_chars, start=self._log_offset)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port} pid={self.pid}>"


def _port_in_use(log_tail: str) -> bool:
    lowered = log_tail.lower()
    return any(marker in lowered for marker in PORT_IN_USE_MARKERS)


def base_environment() -> dict[str, str]:
    """Our environment minus what would leak a developer's settings into a child."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IMPORTER_")}
