"""Finding programs (with install hints when missing) and checking the postgres account's access."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from lab.stack import binaries
from lab.stack.accounts import ServiceAccount
from lab.stack.errors import BinaryNotFoundError, RunDirError
from tests.support.services import make_stack_root


def make_exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_postgres_versions_sort_newest_first(tmp_path: Path) -> None:
    for version in ("9.6", "13", "15", "10"):
        (tmp_path / version / "bin").mkdir(parents=True)
    found = binaries.postgres_bindir_candidates(tmp_path)
    assert [p.parent.name for p in found] == ["15", "13", "10", "9.6"]


def test_postgres_found_under_the_debian_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_exe(tmp_path / "14" / "bin" / "initdb")
    make_exe(tmp_path / "14" / "bin" / "postgres")
    make_exe(tmp_path / "16" / "bin" / "initdb")  # incomplete: no server binary
    monkeypatch.setattr(binaries, "POSTGRES_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert binaries.find_postgres().bindir == tmp_path / "14" / "bin"


def test_missing_programs_say_how_to_install_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(binaries, "POSTGRES_ROOT", tmp_path / "none")
    with pytest.raises(BinaryNotFoundError, match=r"apt-get install -y redis-server"):
        binaries.find_redis_server()
    with pytest.raises(BinaryNotFoundError, match=r"apt-get install -y redis-sentinel"):
        binaries.find_redis_sentinel()
    with pytest.raises(BinaryNotFoundError, match=r"apt-get install -y postgresql"):
        binaries.find_postgres()


def test_toxiproxy_generic_go_binary_is_trusted_only_if_it_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("GOPATH", str(tmp_path / "go"))
    server = make_exe(tmp_path / "go" / "bin" / "server")
    with pytest.raises(BinaryNotFoundError, match=r"go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0"):
        binaries.find_toxiproxy_server()
    server.write_text("#!/bin/sh\necho 'toxiproxy-server version git'\n")
    assert binaries.find_toxiproxy_server() == server


def test_traversal_check_names_the_blocking_directory() -> None:
    account = ServiceAccount(name="someone", uid=54321, gid=54321, home="/nonexistent")
    root = make_stack_root()  # pytest's own tmp_path sits under a 0700 directory
    closed = root / "closed"
    inner = closed / "inner"
    inner.mkdir(parents=True)
    closed.chmod(0o700)
    try:
        assert not account.can_traverse(closed)
        with pytest.raises(RunDirError, match=re.escape(str(closed))):
            account.require_traversable(inner)
        closed.chmod(0o711)
        account.require_traversable(inner)
    finally:
        shutil.rmtree(root)


def test_current_account_needs_no_switch() -> None:
    me = ServiceAccount.current()
    assert me.uid == os.geteuid()
    assert me.command_prefix() == [] and me.popen_kwargs() == {}
