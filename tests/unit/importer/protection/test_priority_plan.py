from importer.protection.priority import plan_priority

NOW = 1_000_000


def test_due_ids_start_in_order_finished_ones_drop_deferred_ones_move() -> None:
    plan = plan_priority(["a", "b", "c", "d"], [NOW - 5.0, None, NOW + 3000.0, NOW], NOW)
    assert plan.start == ["a", "d"]
    assert plan.drop == ["b"]
    assert plan.reschedule == {"c": NOW + 3000.0}


def test_nothing_to_do() -> None:
    plan = plan_priority([], [], NOW)
    assert not plan.start and not plan.drop and not plan.reschedule
