"""O3, "logs are searchable and actionable", measured on the logs a run really produced.

Every line an importer process (API, workers, reconciler) wrote must be one JSON object with
``timestamp``, ``level`` and ``event``; the lines that mark a job's phase transitions must also
carry ``job_id``, ``company_id`` and ``correlation_id``, and the ones that end a phase or a
job its ``duration`` — what an operator searches by when a job goes wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMPORTER_ROLES = frozenset({"api", "worker", "reconciler"})
BASE_FIELDS = ("timestamp", "level", "event")
JOB_EVENTS = {
    "phase_started": ("job_id", "company_id", "correlation_id"),
    "phase_finished": ("job_id", "company_id", "correlation_id", "duration"),
    "job_completed": ("job_id", "company_id", "correlation_id", "duration"),
    "job_failed": ("job_id", "company_id", "correlation_id"),
}
_EXAMPLES = 5


@dataclass
class LogCheck:
    files: int = 0
    lines: int = 0
    invalid: int = 0
    examples: list[str] = field(default_factory=list)

    def _bad(self, where: str, why: str) -> None:
        self.invalid += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(f"{where}: {why}")


def problem(line: str) -> str | None:
    """Why ``line`` is not an actionable log line, or None when it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return f"not JSON: {line[:120]!r}"
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = [f for f in BASE_FIELDS if f not in record]
    missing += [f for f in JOB_EVENTS.get(str(record.get("event")), ()) if record.get(f) in (None, "")]
    return f"{record.get('event')!r} lacks {', '.join(missing)}" if missing else None


def check_logs(paths: Iterable[Path]) -> LogCheck:
    result = LogCheck()
    for path in paths:
        if not path.is_file():
            continue
        result.files += 1
        with path.open(errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                result.lines += 1
                why = problem(line)
                if why is not None:
                    result._bad(f"{path.name}:{number}", why)
    return result
