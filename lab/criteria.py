"""The success criteria (lab/criteria.toml) and their verdicts for one run.

A criterion passes when every one of its seed thresholds holds, fails when any does not, and
is *not measured* when none fails but some threshold had no data: a run that never killed a
worker proves nothing about graceful shutdown, and saying "pass" there would be a lie. The
project thresholds are reported beside the seed ones; ``gate="project"`` makes them decide.

Any failed (or unevaluable) criterion makes the run's exit code non-zero.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from lab.expressions import ExpressionError, MetricSource, Outcome, Threshold, evaluate_threshold, parse_threshold

DEFAULT_CRITERIA = Path(__file__).with_name("criteria.toml")
EXIT_PASS = 0
EXIT_FAIL = 1

Gate = Literal["seed", "project"]


class CriteriaError(Exception):
    """criteria.toml is malformed; the message names the criterion and the expression."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_MEASURED = "not-measured"
    ERROR = "error"  # the expression could not be evaluated on this run's data


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    description: str
    seed_target: str
    seed: tuple[Threshold, ...]
    project: tuple[Threshold, ...] = ()
    applies_to: tuple[str, ...] = ("*",)

    def applies(self, kind: str) -> bool:
        return "*" in self.applies_to or kind in self.applies_to


_KEYS = {"id", "title", "description", "seed_target", "seed", "project", "applies_to"}


def load_criteria(path: Path = DEFAULT_CRITERIA) -> list[Criterion]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CriteriaError(f"{path}: {exc}") from exc
    entries = data.get("criterion")
    if not isinstance(entries, list) or not entries:
        raise CriteriaError(f"{path}: no [[criterion]] tables")
    criteria: list[Criterion] = []
    for number, entry in enumerate(entries, start=1):
        criteria.append(_criterion(path, number, entry))
    ids = [c.id for c in criteria]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CriteriaError(f"{path}: criterion ids used twice: {', '.join(duplicates)}")
    return criteria


def _criterion(path: Path, number: int, entry: dict[str, Any]) -> Criterion:
    cid = str(entry.get("id") or f"#{number}")
    where = f"{path}: criterion {cid}"
    unknown = set(entry) - _KEYS
    if unknown:
        raise CriteriaError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("id", "title", "description", "seed_target", "seed"):
        if not entry.get(key):
            raise CriteriaError(f"{where}: {key!r} is required")

    def thresholds(key: str) -> tuple[Threshold, ...]:
        texts = entry.get(key, [])
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for text in texts:
            try:
                out.append(parse_threshold(str(text)))
            except ExpressionError as exc:
                raise CriteriaError(f"{where}: bad {key} threshold {text!r}: {exc}") from exc
        return tuple(out)

    applies = entry.get("applies_to", ["*"])
    return Criterion(
        id=cid,
        title=str(entry["title"]),
        description=str(entry["description"]).strip(),
        seed_target=str(entry["seed_target"]),
        seed=thresholds("seed"),
        project=thresholds("project"),
        applies_to=tuple(applies) if isinstance(applies, list) else (str(applies),),
    )


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class CriterionResult:
    criterion: Criterion
    verdict: Verdict
    seed: list[Outcome] = field(default_factory=list)
    project: list[Outcome] = field(default_factory=list)
    project_verdict: Verdict | None = None  # None: no project target
    reason: str = ""

    @property
    def measured_text(self) -> str:
        shown = [o.measured_text for o in self.seed if o.measured is not None]
        return "; ".join(shown) if shown else "not measured"

    def to_json(self) -> dict[str, Any]:
        c = self.criterion
        return {
            "id": c.id,
            "title": c.title,
            "description": c.description,
            "applies_to": list(c.applies_to),
            "seed_target": c.seed_target,
            "seed_thresholds": [t.text for t in c.seed],
            "project_thresholds": [t.text for t in c.project],
            "measured": self.measured_text,
            "verdict": self.verdict.value,
            "project_verdict": self.project_verdict.value if self.project_verdict else None,
            "reason": self.reason,
            "outcomes": [_outcome_json(o, "seed") for o in self.seed]
            + [_outcome_json(o, "project") for o in self.project],
        }


def _outcome_json(o: Outcome, target: str) -> dict[str, Any]:
    return {
        "target": target,
        "threshold": o.threshold.text,
        "measured": o.measured,
        "measured_text": o.threshold.format_value(o.measured),
        "target_text": o.threshold.target_text,
        "passed": o.passed,
        "samples": o.samples,
        "note": o.note,
        "reference": o.reference,
        "ratio": o.ratio,
    }


@dataclass
class Evaluation:
    run_kind: str
    gate: Gate
    results: list[CriterionResult]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for r in self.results if r.verdict is verdict)

    @property
    def passed(self) -> bool:
        return self.count(Verdict.FAIL) == 0 and self.count(Verdict.ERROR) == 0

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def reason(self) -> str:
        """The one line under the banner: what failed, or what passed and what went unmeasured."""
        bad = [r for r in self.results if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        if bad:
            return "; ".join(f"{r.criterion.id} {r.criterion.title}: {r.reason}" for r in bad)
        met, unmeasured = self.count(Verdict.PASS), self.count(Verdict.NOT_MEASURED)
        if met == 0:
            return f"no criterion failed, but none was measured ({unmeasured} not measured)"
        return f"{met} criteria met, none failed; {unmeasured} not measured in this run"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_kind": self.run_kind,
            "gate": self.gate,
            "verdict": self.verdict,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "counts": {v.value: self.count(v) for v in Verdict},
            "criteria": [r.to_json() for r in self.results],
        }


def _judge(outcomes: Sequence[Outcome]) -> tuple[Verdict, str]:
    failed = [o for o in outcomes if o.passed is False]
    if failed:
        return Verdict.FAIL, "; ".join(f"{o.measured_text}, target {o.threshold.target_text}" for o in failed)
    unmeasured = [o for o in outcomes if o.passed is None]
    if unmeasured:
        return Verdict.NOT_MEASURED, "; ".join(o.note for o in unmeasured)
    return Verdict.PASS, "; ".join(f"{o.measured_text}, target {o.threshold.target_text}" for o in outcomes)


def evaluate_criterion(criterion: Criterion, metrics: MetricSource, *, gate: Gate = "seed") -> CriterionResult:
    try:
        seed = [evaluate_threshold(t, metrics) for t in criterion.seed]
        project = [evaluate_threshold(t, metrics) for t in criterion.project]
    except ExpressionError as exc:
        return CriterionResult(criterion, Verdict.ERROR, reason=f"cannot evaluate: {exc}")
    seed_verdict, seed_reason = _judge(seed)
    project_verdict, project_reason = _judge(project) if project else (None, "")
    if gate == "project" and project_verdict is not None:
        verdict, reason = project_verdict, project_reason
    else:
        verdict, reason = seed_verdict, seed_reason
    return CriterionResult(criterion, verdict, seed, project, project_verdict, reason)


def evaluate(
    metrics: MetricSource,
    *,
    run_kind: str,
    criteria: Sequence[Criterion] | None = None,
    gate: Gate = "seed",
) -> Evaluation:
    """Judge a run; criteria that do not apply to its kind are listed as not measured."""
    results = []
    for criterion in load_criteria() if criteria is None else criteria:
        if criterion.applies(run_kind):
            results.append(evaluate_criterion(criterion, metrics, gate=gate))
        else:
            kinds = ", ".join(criterion.applies_to)
            results.append(
                CriterionResult(criterion, Verdict.NOT_MEASURED, reason=f"judged in {kinds} runs, not {run_kind}")
            )
    return Evaluation(run_kind=run_kind, gate=gate, results=results)


def evaluate_run(run_dir: Path, *, criteria_path: Path = DEFAULT_CRITERIA, gate: Gate = "seed") -> Evaluation:
    """Judge a recorded run from its directory alone (run.json gives the run kind)."""
    from lab.metrics import Metrics  # here, not at the top: Metrics pulls in pandas
    from lab.rundir import read_run_info

    info = read_run_info(run_dir)
    return evaluate(Metrics.from_run_dir(run_dir), run_kind=info.kind, criteria=load_criteria(criteria_path), gate=gate)
