"""The journal of one experiment run: what was done, when, what came out, and how it ended.

One JSON file per run (``journal-<experiment>-<run>.json`` in the run directory), written by
the runner even when the method raised or the run was interrupted, so a failed drill can be
understood from its directory alone. The shape follows the Chaos Toolkit's journal: the
steady-state checks before and after, the method's activities, the rollbacks, and whether the
steady state deviated. Beyond that it carries what our verdicts need: the measurements, the
experiment's own checks, the evidence they were computed from, and the faults' windows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.rundir import Fault, Measurement, RunDirError, write_json

JOURNAL_GLOB = "journal-*.json"
RunStatus = Literal["running", "completed", "failed", "aborted", "interrupted"]
ActivityStatus = Literal["succeeded", "failed"]


def now() -> datetime:
    return datetime.now(UTC)


def journal_name(experiment: str, run: int) -> str:
    return f"journal-{experiment}-{run}.json"


def jsonable(value: Any) -> Any:
    """Outputs come from code under test: keep what JSON can say, stringify the rest."""
    try:
        json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
    return json.loads(json.dumps(value, default=str))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivityRecord(_Model):
    name: str
    kind: Literal["action", "probe"]
    status: ActivityStatus
    start: datetime
    end: datetime
    duration: float
    output: Any = None
    error: str | None = None
    tolerance: str | None = None
    tolerance_met: bool | None = None


class SteadyState(_Model):
    met: bool
    probes: list[ActivityRecord] = Field(default_factory=list)


class Check(_Model):
    """One of the experiment's own assertions (beyond the criteria of lab/criteria.toml), pass or fail."""

    name: str
    passed: bool
    detail: str = ""


class Journal(_Model):
    experiment: str
    title: str
    description: str = ""
    run: int = 1
    runs: int = 1
    status: RunStatus = "running"
    reason: str = ""
    start: datetime = Field(default_factory=now)
    end: datetime | None = None
    duration: float | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    steady_state_before: SteadyState | None = None
    steady_state_after: SteadyState | None = None
    deviated: bool = False
    method: list[ActivityRecord] = Field(default_factory=list)
    rollbacks: list[ActivityRecord] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    checker: dict[str, Any] | None = None  # the run's checker totals (what went in came out)
    load: dict[str, Any] = Field(default_factory=dict)

    @property
    def slug(self) -> str:
        return f"{self.experiment}-{self.run}"

    @property
    def passed(self) -> bool:
        return self.status == "completed" and all(c.passed for c in self.checks)

    def write(self, run_dir: Path) -> Path:
        path = run_dir / journal_name(self.experiment, self.run)
        write_json(path, self.model_dump(mode="json"))
        return path


def read_journal(path: Path) -> Journal:
    try:
        return Journal.model_validate_json(path.read_text())
    except OSError as exc:
        raise RunDirError(f"{path}: unreadable: {exc}") from exc
    except ValidationError as exc:
        raise RunDirError(f"{path}: not a journal: {exc}") from exc


def read_journals(run_dir: Path) -> list[Journal]:
    """Every journal of a run directory, in the order the runs started."""
    journals = [read_journal(p) for p in sorted(run_dir.glob(JOURNAL_GLOB))]
    return sorted(journals, key=lambda j: j.start)
