"""Where the programs the stack runs live, and how to install each one that is missing.

Lookups are explicit about Debian's quirks: PostgreSQL's server programs are not on PATH
(they sit in ``/usr/lib/postgresql/<major>/bin``), moto_server sits next to the interpreter
of the virtualenv (which need not be activated), and ``go install`` leaves Toxiproxy in
``$(go env GOPATH)/bin`` under the generic name ``server``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.stack.errors import BinaryNotFoundError

POSTGRES_ROOT = Path("/usr/lib/postgresql")
GO_FALLBACK = Path("/usr/local/go/bin/go")
TOXIPROXY_VERSION = "v2.12.0"

POSTGRES_HINT = "apt-get install -y postgresql (or run scripts/setup.sh)"
REDIS_SERVER_HINT = "apt-get install -y redis-server (or run scripts/setup.sh)"
REDIS_SENTINEL_HINT = "apt-get install -y redis-sentinel (or run scripts/setup.sh)"
MOTO_HINT = "pip install -e '.[dev]' into the virtualenv, which brings moto[server] (or run scripts/setup.sh)"
TOXIPROXY_HINT = (
    f"go install github.com/Shopify/toxiproxy/v2/cmd/server@{TOXIPROXY_VERSION} && "
    'cp "$(go env GOPATH)/bin/server" /usr/local/bin/toxiproxy-server (or run scripts/setup.sh)'
)


@dataclass(frozen=True)
class PostgresBinaries:
    """initdb and postgres of one PostgreSQL version: mixing majors corrupts nothing but fails oddly."""

    bindir: Path

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    @property
    def pg_ctl(self) -> Path:
        return self.bindir / "pg_ctl"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _on_path(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def interpreter_bindir() -> Path:
    """The directory of the running interpreter: the virtualenv's bin, activated or not.

    Not resolved through symlinks on purpose: ``.venv/bin/python`` links to the base
    interpreter, whose directory holds no console scripts of the virtualenv.
    """
    return Path(sys.executable).parent


def version_key(path: Path) -> tuple[int, ...]:
    """Sort key of ``/usr/lib/postgresql/<version>/bin`` by version number (15 > 9.6 > 9.5)."""
    numbers = re.findall(r"\d+", path.parent.name)
    return tuple(int(n) for n in numbers) if numbers else (-1,)


def postgres_bindir_candidates(root: Path = POSTGRES_ROOT, path_dirs: Iterable[Path] = ()) -> list[Path]:
    """Directories that may hold initdb + postgres: PATH entries first, then Debian's, newest first."""
    candidates = list(path_dirs)
    if root.is_dir():
        candidates += sorted((d / "bin" for d in root.iterdir()), key=version_key, reverse=True)
    return candidates


def find_postgres() -> PostgresBinaries:
    path_dirs = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    candidates = postgres_bindir_candidates(POSTGRES_ROOT, path_dirs)
    for bindir in candidates:
        binaries = PostgresBinaries(bindir)
        if _executable(binaries.initdb) and _executable(binaries.postgres):
            return binaries
    raise BinaryNotFoundError("postgres/initdb", POSTGRES_HINT, ["PATH", f"{POSTGRES_ROOT}/*/bin"])


def find_redis_server() -> Path:
    found = _on_path("redis-server")
    if found is None:
        raise BinaryNotFoundError("redis-server", REDIS_SERVER_HINT, ["PATH"])
    return found


def find_redis_sentinel() -> Path:
    found = _on_path("redis-sentinel")
    if found is None:
        raise BinaryNotFoundError("redis-sentinel", REDIS_SENTINEL_HINT, ["PATH"])
    return found


def find_moto_server() -> Path:
    local = interpreter_bindir() / "moto_server"
    if _executable(local):
        return local
    found = _on_path("moto_server")
    if found is None:
        raise BinaryNotFoundError("moto_server", MOTO_HINT, [str(interpreter_bindir()), "PATH"])
    return found


def find_console_script(name: str) -> Path | None:
    """A console script of this project (``importer``, ``drill``) next to the interpreter."""
    local = interpreter_bindir() / name
    return local if _executable(local) else _on_path(name)


def go_path(timeout: float = 15.0) -> Path:
    """``$(go env GOPATH)``; ``~/go`` (Go's own default) when Go cannot be asked."""
    if os.environ.get("GOPATH"):
        return Path(os.environ["GOPATH"].split(os.pathsep)[0])
    go = _on_path("go") or (GO_FALLBACK if _executable(GO_FALLBACK) else None)
    if go is not None:
        try:
            done = subprocess.run(
                [str(go), "env", "GOPATH"], capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip().split(os.pathsep)[0])
    return Path.home() / "go"


def _is_toxiproxy(path: Path, timeout: float = 10.0) -> bool:
    """``go install`` names the binary ``server``; only trust one that says it is Toxiproxy."""
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "toxiproxy" in (done.stdout + done.stderr).lower()


def find_toxiproxy_server() -> Path:
    found = _on_path("toxiproxy-server")
    if found is not None:
        return found
    gobin = go_path() / "bin"
    named = gobin / "toxiproxy-server"
    if _executable(named):
        return named
    generic = gobin / "server"
    if _executable(generic) and _is_toxiproxy(generic):
        return generic
    raise BinaryNotFoundError("toxiproxy-server", TOXIPROXY_HINT, ["PATH", str(gobin)])
