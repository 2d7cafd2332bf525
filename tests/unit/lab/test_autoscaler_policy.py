"""The autoscaler's policy as a pure function: target 10 jobs per worker, bounds, cooldowns."""

from __future__ import annotations

import pytest

from lab.autoscaler import Crossing, Policy, decide

SEED = Policy()  # 10 jobs/worker, 2..50, cooldowns 60 s out / 300 s in
SMALL = Policy(target_per_worker=10, min_workers=2, max_workers=8, scale_out_cooldown_s=60, scale_in_cooldown_s=300)


def test_the_seed_policy_is_the_default() -> None:
    assert (SEED.target_per_worker, SEED.min_workers, SEED.max_workers) == (10, 2, 50)
    assert (SEED.scale_out_cooldown_s, SEED.scale_in_cooldown_s) == (60, 300)


@pytest.mark.parametrize(("depth", "wanted"), [(0, 2), (10, 2), (20, 2), (21, 3), (75, 8), (1000, 8), (-5, 2)])
def test_wanted_is_depth_over_target_within_bounds(depth: int, wanted: int) -> None:
    assert SMALL.wanted(depth) == wanted


def test_scale_out_at_once_to_the_wanted_count_when_no_cooldown_runs() -> None:
    d = decide(SMALL, depth=1000, current=2, now=100.0, last_scale_out=None, last_scale_in=None)
    assert (d.action, d.target) == ("out", 8)


def test_scale_out_waits_for_its_cooldown() -> None:
    held = decide(SMALL, depth=60, current=4, now=130.0, last_scale_out=100.0, last_scale_in=None)
    assert (held.action, held.target) == ("hold", 4) and "scale-out cooldown, 30s left" in held.reason
    go = decide(SMALL, depth=60, current=4, now=160.0, last_scale_out=100.0, last_scale_in=None)
    assert (go.action, go.target) == ("out", 6)


def test_scale_in_waits_for_its_cooldown_after_any_scaling() -> None:
    after_out = decide(SMALL, depth=0, current=8, now=350.0, last_scale_out=100.0, last_scale_in=None)
    assert after_out.action == "hold" and "scale-in cooldown" in after_out.reason
    go = decide(SMALL, depth=0, current=8, now=400.0, last_scale_out=100.0, last_scale_in=None)
    assert (go.action, go.target) == ("in", 2)
    again = decide(SMALL, depth=0, current=5, now=500.0, last_scale_out=100.0, last_scale_in=400.0)
    assert again.action == "hold"


def test_a_fresh_pool_scales_in_without_waiting_for_a_cooldown_that_never_started() -> None:
    d = decide(SMALL, depth=0, current=5, now=10.0, last_scale_out=None, last_scale_in=None)
    assert (d.action, d.target) == ("in", 2)


def test_below_minimum_is_topped_up_even_in_a_cooldown() -> None:
    d = decide(SMALL, depth=0, current=1, now=101.0, last_scale_out=100.0, last_scale_in=None)
    assert (d.action, d.target) == ("out", 2)


def test_above_maximum_is_brought_down() -> None:
    d = decide(SMALL, depth=1000, current=12, now=0.0, last_scale_out=None, last_scale_in=None)
    assert (d.action, d.target) == ("in", 8)


def test_at_target_holds() -> None:
    d = decide(SMALL, depth=35, current=4, now=0.0, last_scale_out=None, last_scale_in=None)
    assert (d.action, d.target) == ("hold", 4)


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Policy(min_workers=5, max_workers=2)
    with pytest.raises(ValueError):
        Policy(target_per_worker=0)


def test_the_crossing_clock_starts_once_and_resets_when_the_queue_falls_back() -> None:
    crossing = Crossing()
    crossing.update(SMALL, depth=15, current=2, now=1.0)
    assert crossing.since is None
    crossing.update(SMALL, depth=25, current=2, now=2.0)
    crossing.update(SMALL, depth=40, current=2, now=3.0)
    assert crossing.since == 2.0, "the first tick above the threshold starts the clock"
    crossing.update(SMALL, depth=5, current=2, now=4.0)
    assert crossing.since is None
    crossing.update(SMALL, depth=100, current=2, now=5.0)
    since, wall = crossing.take()
    assert since == 5.0 and wall is not None and crossing.since is None


def test_no_crossing_at_the_maximum() -> None:
    crossing = Crossing()
    crossing.update(SMALL, depth=10_000, current=8, now=1.0)
    assert crossing.since is None
