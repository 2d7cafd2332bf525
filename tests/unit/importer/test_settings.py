from importer.settings import Settings


def test_defaults_are_the_seed_production_values() -> None:
    s = Settings()
    assert s.orphan_sweep_interval == 300
    assert s.orphan_min_age == 60
    assert s.stall_limit == 7200
    assert s.worker_concurrency == 5
    assert (s.db_pool_min, s.db_pool_max) == (10, 20)
    assert s.lease_seconds == 30
    assert s.shutdown_grace_seconds == 30


def test_lists_and_intervals_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("IMPORTER_IMAGE_ALLOWED_HOSTS", "127.0.0.1, ::1")
    monkeypatch.setenv("IMPORTER_REDIS_SENTINELS", "127.0.0.1:26379,127.0.0.1:26380")
    monkeypatch.setenv("IMPORTER_LEASE_SECONDS", "3")
    s = Settings()
    assert s.image_allowed_hosts == ["127.0.0.1", "::1"]
    assert s.redis_sentinels == ["127.0.0.1:26379", "127.0.0.1:26380"]
    assert s.lease_renew_interval == 1.0
