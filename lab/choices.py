"""The drill CLI's fixed choices as enums, so ``--help`` and shell completion list them.

typer shows an Enum option as ``[seed|project]`` and completes it; a plain ``str`` option with
a hand-written check showed ``<str>`` and completed nothing. Each enum mirrors the Literal the
code under the CLI takes (``lab.criteria.Gate``, ``lab.stack.stack.Topology``, the chaos
suites): mypy types a member's ``.value`` as that Literal, and the CLI tests check they agree.
"""

from __future__ import annotations

from enum import StrEnum


class GateChoice(StrEnum):
    """Which targets of lab/criteria.toml decide pass/fail."""

    SEED = "seed"
    PROJECT = "project"


class TopologyChoice(StrEnum):
    """The shape of the local stack: one Redis, or primary + replicas + Sentinels + Toxiproxy."""

    SINGLE = "single"
    HA = "ha"


class Suite(StrEnum):
    """The chaos suites: every experiment once (chaos), or three times in rounds (dr)."""

    CHAOS = "chaos"
    DR = "dr"
