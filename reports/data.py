"""Everything a report shows, loaded from a run directory once.

Only run.json is required: a run that crashed before the checker ran still deserves a report
saying what it has and what it lacks (``missing``), rather than no report at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lab.checker_inputs import CheckReport, read_check_report
from lab.criteria import DEFAULT_CRITERIA, Evaluation, Gate, evaluate, load_criteria
from lab.metrics import Metrics
from lab.rundir import (
    ACKNOWLEDGED_CSV,
    CHECKER_JSON,
    SAMPLES_CSV,
    AcknowledgedJob,
    Fault,
    RunInfo,
    read_acknowledged,
    read_faults,
    read_run_info,
)
from lab.samples import read_samples


@dataclass
class RunData:
    run_dir: Path
    info: RunInfo
    evaluation: Evaluation
    acknowledged: list[AcknowledgedJob] | None
    samples: pd.DataFrame | None
    faults: list[Fault]
    check: CheckReport | None
    missing: list[str] = field(default_factory=list)  # recorded inputs this run lacks

    @property
    def duration_s(self) -> float:
        """The run's length, from run.json, else the last sample or job end."""
        if self.info.duration_s is not None:
            return self.info.duration_s
        ends = [0.0]
        if self.samples is not None and len(self.samples):
            ends.append(float(self.samples["elapsed_s"].max()))
        for job in self.acknowledged or ():
            if job.ended_at is not None:
                ends.append((job.ended_at - self.info.started_at).total_seconds())
        return max(ends)

    def fault_windows(self) -> list[tuple[str, float, float]]:
        end = self.duration_s
        return [(f.name, *f.window(self.info.started_at, end)) for f in self.faults]


def load_run(run_dir: Path, *, criteria_path: Path = DEFAULT_CRITERIA, gate: Gate = "seed") -> RunData:
    info = read_run_info(run_dir)
    missing = []
    acknowledged = read_acknowledged(run_dir) if (run_dir / ACKNOWLEDGED_CSV).exists() else None
    if acknowledged is None:
        missing.append(ACKNOWLEDGED_CSV)
    samples = read_samples(run_dir)
    if samples is None:
        missing.append(SAMPLES_CSV)
    check = read_check_report(run_dir)
    if check is None:
        missing.append(CHECKER_JSON)
    evaluation = evaluate(
        Metrics.from_run_dir(run_dir), run_kind=info.kind, criteria=load_criteria(criteria_path), gate=gate
    )
    return RunData(
        run_dir=run_dir,
        info=info,
        evaluation=evaluation,
        acknowledged=acknowledged,
        samples=samples,
        faults=read_faults(run_dir),
        check=check,
        missing=missing,
    )
