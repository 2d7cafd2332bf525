from importer.settings import Settings


def test_protection_defaults_are_the_issue_values() -> None:
    s = Settings()
    assert (s.roastify_rate_limit_per_min, s.shopify_rate_limit_per_min, s.company_rate_limit_per_min) == (
        100,
        120,
        600,
    )
    assert (s.rate_limit_window_seconds, s.rate_limit_window_skew, s.rate_limit_max_wait) == (60, 1, 5.0)
    assert s.queue_start_limit_per_min == 100
    assert (s.breaker_failure_threshold, s.breaker_open_seconds) == (5, 60.0)
    assert s.health_cache_seconds == 10.0
    assert s.health_overload_waiting == 10_000
    assert s.basic_defer_seconds == 300.0
    assert s.brake_resume_after == 300.0


def test_drills_shrink_them_through_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("IMPORTER_BREAKER_OPEN_SECONDS", "2")
    monkeypatch.setenv("IMPORTER_HEALTH_DEGRADED_WAITING", "2")
    monkeypatch.setenv("IMPORTER_HEALTH_CRITICAL_WAITING", "4")
    monkeypatch.setenv("IMPORTER_HEALTH_OVERLOAD_WAITING", "6")
    s = Settings()
    assert s.breaker_open_seconds == 2.0
    assert (s.health_degraded_waiting, s.health_critical_waiting, s.health_overload_waiting) == (2, 4, 6)
