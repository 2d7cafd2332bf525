"""The OS account a component runs as: root for most, ``postgres`` for PostgreSQL.

PostgreSQL refuses to run as root, so when the stack runs as root the database server
runs as the ``postgres`` account (created by Debian's package). Two ways are used:

* one-shot commands (initdb) go through ``runuser -u postgres --``, as docs/architecture.md §9 says;
* the long-lived server is started with ``Popen(user=..., group=...)`` instead, because
  runuser stays as the parent, forwards SIGTERM and then SIGKILLs its child two seconds
  later ("Session terminated, killing shell..."), which would cut a database shutdown
  short; it would also put runuser's pid, not the postmaster's, in stack.json.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.stack.errors import RunDirError, StackError


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    uid: int
    gid: int
    home: str
    groups: tuple[int, ...] = ()

    @classmethod
    def lookup(cls, name: str) -> ServiceAccount:
        try:
            entry = pwd.getpwnam(name)
        except KeyError as exc:
            raise StackError(
                f"OS account {name!r} does not exist; apt-get install -y postgresql creates it "
                f"(or: useradd --system --home-dir /var/lib/{name} {name})"
            ) from exc
        groups = tuple(g.gr_gid for g in grp.getgrall() if name in g.gr_mem)
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir, groups=groups)

    @classmethod
    def current(cls) -> ServiceAccount:
        entry = pwd.getpwuid(os.geteuid())
        return cls(
            name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir, groups=tuple(os.getgroups())
        )

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def command_prefix(self) -> list[str]:
        """Prefix for a one-shot command run as this account (empty when we already are it)."""
        return [] if self.is_current else ["runuser", "-u", self.name, "--"]

    def popen_kwargs(self) -> dict[str, Any]:
        """``subprocess.Popen`` arguments that start a long-lived process as this account."""
        if self.is_current:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def environment(self) -> dict[str, str]:
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}

    def own(self, path: Path) -> None:
        """Give ``path`` to this account (no-op when it is the current one)."""
        if not self.is_current:
            os.chown(path, self.uid, self.gid)

    def can_traverse(self, path: Path) -> bool:
        """Whether this account may enter ``path`` (the x bit that applies to it)."""
        info = path.stat()
        if self.uid == 0:
            return True
        if info.st_uid == self.uid:
            return bool(info.st_mode & stat.S_IXUSR)
        if info.st_gid == self.gid or info.st_gid in self.groups:
            return bool(info.st_mode & stat.S_IXGRP)
        return bool(info.st_mode & stat.S_IXOTH)

    def require_traversable(self, path: Path) -> None:
        """Fail early with the offending directory rather than with initdb's 'permission denied'."""
        for ancestor in [path, *path.parents]:
            if ancestor.exists() and not self.can_traverse(ancestor):
                raise RunDirError(
                    f"the {self.name!r} account cannot enter {ancestor} (mode {oct(ancestor.stat().st_mode & 0o777)}), "
                    f"so PostgreSQL cannot use {path}; choose a run directory under a world-traversable path "
                    f"or chmod o+x {ancestor}"
                )


def postgres_account() -> ServiceAccount:
    """``postgres`` when we are root (PostgreSQL refuses root), else whoever we are."""
    return ServiceAccount.lookup("postgres") if os.geteuid() == 0 else ServiceAccount.current()
