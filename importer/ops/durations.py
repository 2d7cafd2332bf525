"""``--since`` values: a duration back from now ("90m", "2h", "1h30m", "3d") or an ISO time.

Hand-written because it is a dozen lines: pulling in a date-parsing library for "2h" would
add more surface than it saves.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from importer.errors import OpsError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """The moment ``value`` names, as an aware UTC datetime; ``OpsError`` when it names none."""
    text = value.strip().lower()
    now = now or datetime.now(UTC)
    if _DURATION.match(text):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise OpsError(
            f"--since {value!r}: expected a duration such as 30m, 2h, 1h30m, 7d, or an ISO time"
            " such as 2024-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > now:
        raise OpsError(f"--since {value!r} is in the future")
    return moment
