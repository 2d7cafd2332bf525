"""PostgreSQL for the stack: its own cluster in the run directory, on a free loopback port.

Layout under ``base_dir`` (owned by the account the server runs as, mode 0700)::

    data/     the cluster (initdb)
    socket/   the unix socket directory; only that account and root can reach it

Authentication: ``trust`` on the unix socket (reachable by root and the server's account
only, used to create the role), ``scram-sha-256`` over TCP, which is what the importer uses
with a random password, as in production.

Stopping uses SIGINT ("fast" shutdown): SIGTERM is "smart" shutdown, which waits for every
client to disconnect, and the importer's pools never do on their own.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import asyncpg

from lab.stack.accounts import ServiceAccount, postgres_account
from lab.stack.binaries import PostgresBinaries, find_postgres
from lab.stack.blocking import run_blocking
from lab.stack.component import LAYER_DATA, Component
from lab.stack.errors import ComponentStartError, RunDirError
from lab.stack.ports import PortAllocator
from lab.stack.process import log_marker, read_tail

INITDB_TIMEOUT = 180.0
SQL_TIMEOUT = 30.0
UNIX_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL
DEFAULT_SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    # api + N workers + reconciler, each with its own pool, plus drills' own connections.
    "max_connections": "300",
    "unix_socket_permissions": "0700",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_min_messages": "warning",
}


class PostgresServer(Component):
    role = "postgres"
    layer = LAYER_DATA
    stop_signal = signal.SIGINT
    stop_timeout = 60.0
    start_timeout = 90.0

    def __init__(
        self,
        base_dir: Path,
        *,
        log_dir: Path,
        ports: PortAllocator | None = None,
        port: int | None = None,
        name: str = "postgres",
        database: str = "importer",
        user: str = "importer",
        password: str | None = None,
        server_settings: Mapping[str, str] | None = None,
        binaries: PostgresBinaries | None = None,
        run_as: ServiceAccount | None = None,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.database = database
        self.user = user
        self.password = password or secrets.token_urlsafe(24)
        self.server_settings = {**DEFAULT_SERVER_SETTINGS, **(server_settings or {})}
        self.binaries = binaries or find_postgres()
        self.run_as = run_as or postgres_account()

    # --- addresses -----------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        """What the importer gets: the application role over TCP, password-authenticated."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(self.database, safe='')}"
        )

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"

    # --- component -----------------------------------------------------------------------------

    def account(self) -> ServiceAccount:
        return self.run_as

    def working_dir(self) -> Path:
        # The server's account may not be allowed into our cwd (e.g. /root).
        return self.base_dir

    def command(self) -> list[str]:
        argv = [
            str(self.binaries.postgres),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
        ]
        for key, value in self.server_settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def prepare(self) -> None:
        if len(str(self.socket_path)) > UNIX_SOCKET_PATH_MAX:
            raise RunDirError(
                f"the unix socket path {self.socket_path} is longer than {UNIX_SOCKET_PATH_MAX} bytes; "
                "use a shorter run directory"
            )
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.run_as.require_traversable(self.base_dir.parent)
        for path in (self.base_dir, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)
            self.run_as.own(path)
        if (self.data_dir / "PG_VERSION").exists():
            return  # an existing cluster (restart): keep its data
        self._initdb()

    def _initdb(self) -> None:
        argv = [
            *self.run_as.command_prefix(),
            str(self.binaries.initdb),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # a lab cluster: no need to fsync the template files
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(log_marker("process_started", process="initdb", argv=argv))
            log.flush()
            try:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir,
                    timeout=INITDB_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise ComponentStartError(
                    self.name,
                    f"initdb did not finish within {INITDB_TIMEOUT:.0f}s",
                    self.log_path,
                    read_tail(self.log_path, start=offset),
                ) from exc
        if done.returncode != 0:
            raise ComponentStartError(
                self.name,
                f"initdb exited with code {done.returncode}",
                self.log_path,
                read_tail(self.log_path, start=offset),
            )

    def probe(self) -> str | None:
        async def check() -> None:
            conn = await asyncpg.connect(
                host=str(self.socket_dir), port=self.port, user="postgres", database="postgres", timeout=5
            )
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()

        run_blocking(check, timeout=10)
        return None

    def after_ready(self) -> None:
        """Create the application role and database (or reset the password of existing ones)."""

        async def create() -> None:
            admin = await asyncpg.connect(
                host=str(self.socket_dir), port=self.port, user="postgres", database="postgres", timeout=10
            )
            try:
                exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", self.user)
                verb = "ALTER" if exists else "CREATE"
                statement = await admin.fetchval(
                    f"SELECT format('{verb} ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", self.user, self.password
                )
                await admin.execute(statement)
                if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database):
                    statement = await admin.fetchval(
                        "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)", self.database, self.user
                    )
                    await admin.execute(statement)
            finally:
                await admin.close()
            # Prove the URL the importer gets works: TCP, scram, the application role.
            app = await asyncpg.connect(self.database_url, timeout=10)
            try:
                await app.fetchval("SELECT 1")
            finally:
                await app.close()

        run_blocking(create, timeout=SQL_TIMEOUT)
