"""The fair scheduler's pick: round-robin across tenants, housekeeping of what it read."""

from importer.protection.tenant_queue import TenantDue, plan_fair_starts

NOW = 1_000_000
LEASE = 6_000


def plan(tenants, scores, running=(), paused=(), slots=10):
    return plan_fair_starts(tenants, scores, set(running), set(paused), now_ms=NOW, slots=slots, recheck_ms=LEASE)


def test_one_job_of_each_tenant_before_a_second_of_any() -> None:
    tenants = [TenantDue("b", ["b1"]), TenantDue("a", ["a1", "a2", "a3"]), TenantDue("c", ["c1", "c2"])]
    scores = {i: NOW - 10.0 for t in tenants for i in t.due}
    p = plan(tenants, scores, slots=5)
    assert p.start == [("b", "b1"), ("a", "a1"), ("c", "c1"), ("a", "a2"), ("c", "c2")]


def test_a_small_tenant_behind_a_big_backlog_gets_the_only_slot_when_it_comes_first() -> None:
    tenants = [TenantDue("small", ["s1"]), TenantDue("big", [f"b{i}" for i in range(40)])]
    scores = {i: NOW - 1000.0 for t in tenants for i in t.due}
    assert plan(tenants, scores, slots=1).start == [("small", "s1")]


def test_finished_ids_drop_deferred_ones_move_to_their_arq_score_running_ones_wait_a_lease() -> None:
    tenants = [TenantDue("a", ["gone", "later", "running", "ready"])]
    scores = {"gone": None, "later": NOW + 5000.0, "running": NOW - 1.0, "ready": NOW - 1.0}
    p = plan(tenants, scores, running={"running"})
    assert p.drop == {"a": ["gone"]}
    assert p.reschedule == {"a": {"later": NOW + 5000.0, "running": float(NOW + LEASE)}}
    assert p.start == [("a", "ready")]
    assert p.settle == []


def test_a_tenant_with_nothing_startable_is_settled_and_a_paused_one_skipped() -> None:
    tenants = [TenantDue("idle", []), TenantDue("busy", ["r"]), TenantDue("noisy", ["n1"])]
    p = plan(tenants, {"r": NOW - 1.0, "n1": NOW - 1.0}, running={"r"}, paused={"noisy"})
    assert p.start == []
    assert p.settle == ["idle", "busy"]
    assert p.skipped_paused == ["noisy"]


def test_no_slots_no_starts_but_housekeeping_still_happens() -> None:
    p = plan([TenantDue("a", ["x", "y"])], {"x": None, "y": NOW - 1.0}, slots=0)
    assert p.start == [] and p.drop == {"a": ["x"]}
