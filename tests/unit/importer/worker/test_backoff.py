import random

from importer.worker.backoff import retry_delay


def test_grows_exponentially_within_equal_jitter_bounds() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40)]:
        for _ in range(50):
            d = retry_delay(attempt, base=5, cap=300, rng=rng)
            assert ceiling / 2 <= d <= ceiling


def test_is_capped() -> None:
    assert retry_delay(30, base=5, cap=60, rng=random.Random(1)) <= 60


def test_provider_retry_after_wins_when_longer() -> None:
    d = retry_delay(1, base=1, cap=300, retry_after=42, rng=random.Random(3))
    assert 42 <= d <= 47


def test_jitter_spreads_a_burst() -> None:
    rng = random.Random(11)
    delays = {round(retry_delay(3, base=5, cap=300, rng=rng), 3) for _ in range(20)}
    assert len(delays) > 15
