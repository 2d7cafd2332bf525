"""Where a drill run's stack answers: a stack it started, or one ``--attach`` found running.

Kept apart from the run itself (lab/drill_run.py) so the run reads as its steps, and so the
attach rules are testable without a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.stack.errors import StackError
from lab.stack.info import StackInfo, load_info
from lab.stack.recorded import process_statuses
from lab.stack.stack import Stack


class RunError(Exception):
    """The run cannot be carried out (exit 2): no stack to attach to, set-up failed, ..."""


@dataclass(frozen=True)
class Target:
    """Where the run's stack answers, however it came to be."""

    api_url: str
    provider_url: str
    database_url: str
    redis_url: str
    s3_endpoint: str
    s3_bucket: str
    operator_token: str
    overrides: dict[str, str]
    description: str

    @classmethod
    def of_stack(cls, stack: Stack, description: str) -> Target:
        return cls(
            api_url=stack.api_url,
            provider_url=stack.provider_url,
            database_url=stack.database_url,
            redis_url=stack.redis_url,
            s3_endpoint=stack.s3_endpoint,
            s3_bucket=stack.s3_bucket,
            operator_token=stack.operator_token,
            overrides=dict(stack.config.env_overrides),
            description=description,
        )

    @classmethod
    def of_info(cls, info: StackInfo, description: str) -> Target:
        missing = [
            name
            for name, value in (
                ("api_url", info.api_url),
                ("provider_url", info.provider_url),
                ("database_url", info.database_url),
                ("redis_url", info.redis_url),
                ("s3_endpoint", info.s3_endpoint),
            )
            if not value
        ]
        if missing:
            raise RunError(
                f"the stack in {info.run_dir} lacks {', '.join(missing)} (a Sentinel stack is not supported)"
            )
        assert info.api_url and info.provider_url and info.database_url and info.redis_url and info.s3_endpoint
        return cls(
            api_url=info.api_url,
            provider_url=info.provider_url,
            database_url=info.database_url,
            redis_url=info.redis_url,
            s3_endpoint=info.s3_endpoint,
            s3_bucket=info.s3_bucket,
            operator_token=info.operator_token,
            overrides=dict(info.env_overrides),
            description=description,
        )


def attached_info(stack_dir: Path) -> StackInfo:
    """The running stack of ``--attach``; RunError when there is none or part of it is down."""
    try:
        info = load_info(stack_dir)
    except StackError as exc:
        raise RunError(f"cannot read the stack in {stack_dir.absolute()}: {exc}") from exc
    if info is None:
        raise RunError(
            f"no stack is recorded in {stack_dir.absolute()}: start one with `drill up --run-dir {stack_dir}` "
            "or run without --attach to start a fresh one"
        )
    # Workers come and go (an autoscaler, a chaos drill): only the rest of the stack must be up.
    dead = [s.record.name for s in process_statuses(info) if not s.alive and s.record.role != "worker"]
    if info.state != "running" or dead or not info.processes:
        detail = f"dead: {', '.join(dead)}" if dead else f"state {info.state}"
        raise RunError(f"the stack in {stack_dir.absolute()} is not running ({detail}); `drill up` it again")
    return info
