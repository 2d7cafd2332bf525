"""Run a server as a real subprocess on a free loopback port, for as long as a test needs it.

Every wait is bounded, the child's output goes to a file (a full pipe would freeze it under
load), and the child is stopped when the ``with`` block ends however it ends; an ``atexit``
hook stops any child a crashed test run left behind.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ("127.0.0.1", "::1")

_live: set[subprocess.Popen[bytes]] = set()


class ServerStartError(RuntimeError):
    """The server exited or never became healthy; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now; the caller retries on the small chance another process takes it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    def log_tail(self, max_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-max_chars:]
        except OSError as exc:
            return f"(log {self.log_path} unreadable: {exc})"

    def stop(self, grace: float = 5.0) -> int | None:
        return stop_process(self.process, grace)


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> int | None:
    """SIGTERM, wait ``grace`` seconds, then SIGKILL; returns the exit code (None if unreapable)."""
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                try:
                    process.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    return None
        return process.returncode
    finally:
        _live.discard(process)


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_live):
        stop_process(process, grace=2.0)


def wait_for_http(
    url: str, *, timeout: float, process: subprocess.Popen[bytes] | None = None, interval: float = 0.05
) -> None:
    """Poll ``url`` until it answers 200, the process exits, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    while True:
        if process is not None and process.poll() is not None:
            raise ServerStartError(f"process exited with code {process.returncode} before {url} answered")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerStartError(f"{url} did not answer 200 within {timeout:.1f}s (last: {last_error})")
        try:
            response = httpx.get(url, timeout=min(1.0, max(0.05, remaining)))
            if response.status_code == 200:
                return
            last_error = f"status {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


@contextmanager
def server_process(
    command: Callable[[int], Sequence[str]],
    *,
    health_path: str,
    host: str = "127.0.0.1",
    startup_timeout: float = 20.0,
    log_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    attempts: int = 3,
    name: str = "server",
) -> Iterator[ServerProcess]:
    """Start ``command(port)`` on a free port, wait for ``health_path``, stop it on exit.

    A start that loses its port to another process (address in use) is retried on a fresh
    port, at most ``attempts`` times; any other failure raises at once with the log's tail.
    """
    if host not in LOOPBACK:
        raise ValueError(f"test servers listen on loopback only, not {host!r}")
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"{name}-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    server: ServerProcess | None = None
    for attempt in range(1, attempts + 1):
        port = free_port(host)
        log_path = log_dir / f"{name}-{port}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                list(command(port)),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env={**os.environ, **(env or {})},
            )
        _live.add(process)
        candidate = ServerProcess(process=process, host=host, port=port, log_path=log_path)
        try:
            wait_for_http(f"{candidate.base_url}{health_path}", timeout=startup_timeout, process=process)
        except ServerStartError as exc:
            candidate.stop()
            tail = candidate.log_tail()
            if "address already in use" in tail.lower() and attempt < attempts:
                continue
            raise ServerStartError(f"{name} on port {port}: {exc}\n--- log tail ---\n{tail}") from exc
        except BaseException:
            candidate.stop()
            raise
        server = candidate
        break
    assert server is not None  # the loop either set it or raised
    try:
        yield server
    finally:
        server.stop()


def fake_provider_command(host: str = "127.0.0.1", *extra: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, "-m", "lab.fake_provider", "--host", host, "--port", str(port), *extra]


@contextmanager
def fake_provider(
    *, host: str = "127.0.0.1", log_dir: Path | None = None, extra_args: Sequence[str] = ()
) -> Iterator[ServerProcess]:
    """The fake commerce provider (``python -m lab.fake_provider``) on a free port."""
    with server_process(
        fake_provider_command(host, *extra_args),
        health_path="/admin/health",
        host=host,
        log_dir=log_dir,
        name="fake-provider",
    ) as server:
        yield server
