"""The stack's run directory (``.drill`` by default): layout, exclusive use, and fresh starts.

One directory holds one stack: its stack.json, a directory per component, and ``logs/``.
Two ``drill`` commands must not prepare or tear down the same directory at once, hence the
lock; and a new stack never starts on top of a live one, nor wipes a directory it did not
create (a typo in ``--run-dir`` must not delete someone's files).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.stack.errors import RunDirError, StackAlreadyRunningError
from lab.stack.info import STACK_JSON, load_info
from lab.stack.recorded import live_records

LOCK_FILE = ".lock"
LOGS = "logs"


class StackDir:
    def __init__(self, path: Path) -> None:
        self.path = path.absolute()

    @property
    def logs_dir(self) -> Path:
        return self.path / LOGS

    def component_dir(self, name: str) -> Path:
        return self.path / name

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the directory for one ``drill up``/``down``; fails fast if taken."""
        self.ensure_exists()
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StackAlreadyRunningError(
                    f"another drill command is starting or stopping the stack in {self.path}; wait for it"
                ) from exc
            yield
        finally:
            os.close(fd)

    def ensure_exists(self) -> None:
        if not self.path.exists():
            self.path.mkdir(parents=True)
            # PostgreSQL runs as another account and must be able to enter the directory.
            self.path.chmod(0o755)

    def prepare_fresh(self) -> None:
        """Empty what a previous, dead stack left here; refuse a live stack or foreign content."""
        self.ensure_exists()
        info = load_info(self.path)
        entries = {p.name for p in self.path.iterdir()} - {LOCK_FILE}
        if info is None:
            if entries:
                raise RunDirError(
                    f"{self.path} is not empty and holds no {STACK_JSON}; refusing to use it for a stack "
                    f"(found: {', '.join(sorted(entries)[:5])}); choose an empty or new directory"
                )
            return
        live = live_records(info)
        if live:
            names = ", ".join(f"{r.name} (pid {r.pid})" for r in live)
            raise StackAlreadyRunningError(
                f"a stack is already running in {self.path}: {names}; api at {info.api_url}. "
                f"Run `drill down --run-dir {self.path}` first"
            )
        for name in {*info.paths, LOGS, STACK_JSON} & entries:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
