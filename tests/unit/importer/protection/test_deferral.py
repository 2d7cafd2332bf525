import random

from importer.protection.deferral import MIN_DEFER, deferral_delay


def test_never_earlier_than_retry_after_and_at_most_jitter_later() -> None:
    rng = random.Random(5)
    for retry_after in (0.0, 0.3, 12.0, 61.0):
        for _ in range(100):
            d = deferral_delay(retry_after, jitter=2.0, rng=rng)
            assert max(MIN_DEFER, retry_after) <= d <= max(MIN_DEFER, retry_after) + 2.0


def test_jitter_spreads_jobs_freed_by_the_same_window() -> None:
    rng = random.Random(9)
    delays = {round(deferral_delay(10.0, jitter=2.0, rng=rng), 3) for _ in range(20)}
    assert len(delays) > 15


def test_no_jitter_means_exactly_retry_after() -> None:
    assert deferral_delay(4.0, jitter=0.0) == 4.0
    assert deferral_delay(0.0, jitter=0.0) == MIN_DEFER
