import pytest

from importer.protection.health import HealthReport, Level, Thresholds, level_for
from importer.settings import Settings

T = Thresholds(waiting=(10, 50, 100), age=(60.0, 300.0, 900.0))


@pytest.mark.parametrize(
    ("waiting", "age", "level"),
    [
        (0, None, Level.HEALTHY),
        (9, 59.9, Level.HEALTHY),
        (10, None, Level.DEGRADED),
        (49, 0.0, Level.DEGRADED),
        (50, None, Level.CRITICAL),
        (100, None, Level.OVERLOAD),
        (10_000, None, Level.OVERLOAD),
        (0, 60.0, Level.DEGRADED),
        (1, 300.0, Level.CRITICAL),
        (1, 900.0, Level.OVERLOAD),
    ],
)
def test_level_from_waiting_count_and_oldest_age(waiting: int, age: float | None, level: Level) -> None:
    assert level_for(waiting, age, T)[0] is level


def test_the_worse_measure_wins_and_is_named() -> None:
    level, reasons = level_for(12, 400.0, T)
    assert level is Level.CRITICAL
    assert reasons == ["oldest waiting 400s >= 300s"]
    level, reasons = level_for(120, 950.0, T)
    assert level is Level.OVERLOAD and len(reasons) == 2


def test_levels_are_ordered() -> None:
    assert [lv.rank for lv in (Level.HEALTHY, Level.DEGRADED, Level.CRITICAL, Level.OVERLOAD)] == [0, 1, 2, 3]


def test_default_thresholds_match_the_issue() -> None:
    t = Thresholds.from_settings(Settings())
    assert t.waiting == (1_000, 5_000, 10_000)
    assert t.age == (300.0, 900.0, 1800.0)


def test_misordered_thresholds_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORTER_HEALTH_CRITICAL_WAITING", "20000")
    with pytest.raises(ValueError, match="degraded <= critical <= overload"):
        Settings()


def test_report_survives_publication() -> None:
    report = HealthReport(
        level=Level.CRITICAL,
        reasons=["x"],
        waiting=5,
        active=2,
        deferred=1,
        failed_last_hour=None,
        oldest_waiting_age=12.5,
        oldest_age_is_lower_bound=False,
        workers_alive=3,
        breakers={"roastify": {"state": "open"}},
        paused={"mode": "auto"},
        intake_closed=None,
        counters={"breaker_opens": 1},
        computed_at=1.5,
        computed_by="test",
    )
    assert HealthReport.from_json(report.to_json()) == report
