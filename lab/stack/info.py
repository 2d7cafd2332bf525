"""``<run_dir>/stack.json``: how to reach a running stack, and which processes are its own.

It is written as soon as the first process starts and after every change (a worker added, a
restart that changed a pid), so a ``drill up`` that dies half-way still leaves ``drill down``
everything it needs to clean up. It is also how other tools (Locust, chaos, an operator's
``importer ops``) find the stack: read the URLs and ``importer_env`` from here.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.stack.errors import RunDirError
from lab.stack.process import ProcessRecord

STACK_JSON = "stack.json"
SCHEMA_VERSION = 1

StackState = Literal["starting", "running", "failed", "stopping", "stopped"]


def _now() -> datetime:
    return datetime.now(UTC)


class HaNode(BaseModel):
    """One Redis node of the HA topology: where it really listens, and its proxy in front."""

    model_config = ConfigDict(extra="forbid")

    name: str
    port: int
    proxy: str | None = None  # Toxiproxy proxy name; None when Toxiproxy is not installed
    proxy_port: int | None = None
    dir: str

    @property
    def client_port(self) -> int:
        """The port Sentinel hands out for this node, i.e. what clients connect to."""
        return self.proxy_port if self.proxy_port is not None else self.port


class HaLayout(BaseModel):
    """How the HA topology is wired, so a later process (``drill chaos --attach``) can drive it."""

    model_config = ConfigDict(extra="forbid")

    master_name: str
    nodes: list[HaNode]
    sentinels: list[str]  # host:port, reached directly (never through a proxy)
    toxiproxy_url: str | None = None  # None: Toxiproxy missing, experiments that need it stop
    postgres_proxy: str | None = None
    postgres_proxy_port: int | None = None
    direct_database_url: str = ""  # the harness's way in, never cut by a partition
    sentinel_down_after_ms: int = 0
    sentinel_failover_timeout_ms: int = 0

    def node(self, name: str) -> HaNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no Redis node {name!r} in the HA layout")

    def node_at(self, port: int) -> HaNode | None:
        """The node Sentinel means by ``127.0.0.1:<port>`` (its proxy port, or its own)."""
        return next((n for n in self.nodes if port in (n.client_port, n.port)), None)


class StackInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run_dir: str
    state: StackState = "starting"
    topology: str = "single"
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    api_url: str | None = None
    operator_token: str = ""
    database_url: str | None = None
    redis_url: str | None = None
    redis_sentinels: list[str] = Field(default_factory=list)
    s3_endpoint: str | None = None
    s3_bucket: str = ""
    provider_url: str | None = None
    env_overrides: dict[str, str] = Field(default_factory=dict)
    importer_env: dict[str, str] = Field(
        default_factory=dict, description="IMPORTER_* and AWS_* variables to reach this stack"
    )
    paths: list[str] = Field(default_factory=list, description="entries of run_dir this stack created")
    processes: list[ProcessRecord] = Field(default_factory=list)
    ha: HaLayout | None = Field(default=None, description="the HA topology's wiring (topology 'ha' only)")

    def process(self, name: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.name == name), None)

    def with_process(self, record: ProcessRecord) -> StackInfo:
        """A copy where ``record`` replaces the process of the same name (or is appended)."""
        others = [p for p in self.processes if p.name != record.name]
        if len(others) == len(self.processes):
            return self.model_copy(update={"processes": [*self.processes, record]})
        replaced = [record if p.name == record.name else p for p in self.processes]
        return self.model_copy(update={"processes": replaced})

    def urls(self) -> dict[str, str | None]:
        return {
            "api": self.api_url,
            "provider": self.provider_url,
            "s3": self.s3_endpoint,
            "redis": self.redis_url,
            "postgres": self.database_url,
        }


def stack_json_path(run_dir: Path) -> Path:
    return run_dir / STACK_JSON


def save_info(run_dir: Path, info: StackInfo) -> Path:
    """Atomic replace (a reader never sees half a file), mode 0600: it holds the passwords."""
    info = info.model_copy(update={"updated_at": _now()})
    path = stack_json_path(run_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(info.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
    return path


def load_info(run_dir: Path) -> StackInfo | None:
    """The recorded stack, or None when the directory has none."""
    path = stack_json_path(run_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunDirError(f"{path}: unreadable: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: not JSON ({exc}); remove it after checking no stack process is left") from exc
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        raise RunDirError(f"{path}: schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    try:
        return StackInfo.model_validate(data)
    except ValidationError as exc:
        raise RunDirError(f"{path}: {exc}") from exc
