from datetime import UTC, datetime, timedelta

import pytest

from importer.errors import OpsError
from importer.ops.durations import parse_since

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("7d", 7 * 86400), ("1w", 604800), ("1.5h", 5400)],
)
def test_durations_count_back_from_now(text: str, back: int) -> None:
    assert parse_since(text, now=NOW) == NOW - timedelta(seconds=back)


def test_iso_times_naive_ones_are_utc() -> None:
    assert parse_since("2024-05-01T10:00:00Z", now=NOW) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_since("2024-05-01T10:00:00", now=NOW) == datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "10", "2x", "", "2024-13-01"])
def test_nonsense_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(OpsError, match="30m"):
        parse_since(text, now=NOW)


def test_the_future_is_refused() -> None:
    with pytest.raises(OpsError, match="future"):
        parse_since("2030-01-01T00:00:00Z", now=NOW)
