"""Who is the cause of a congested queue, the brakes' single-cause rule, and the limit settings."""

import json

import pytest
from pydantic import ValidationError

from importer.models import Tier
from importer.protection.fairness import TenantWaiting, company_limit, noisy_tenants
from importer.protection.health import HealthReport, Level
from importer.protection.pause import BrakeAction, brake_decision
from importer.settings import Settings


def test_a_tenant_at_or_over_the_share_is_noisy() -> None:
    top = [TenantWaiting("a", 60), TenantWaiting("b", 30), TenantWaiting("c", 10)]
    assert noisy_tenants(top, 100, share=0.5) == ["a"]
    assert noisy_tenants(top, 120, share=0.5) == ["a"]  # 60/120 is exactly half
    assert noisy_tenants(top, 121, share=0.5) == []
    assert noisy_tenants(top, 100, share=0.3) == ["a", "b"]
    assert noisy_tenants([], 0, share=0.5) == []


def test_the_queue_brake_does_not_pause_everyone_for_a_single_noisy_tenant() -> None:
    common = {"level": Level.OVERLOAD, "backlog": 10, "pause": None, "now": 0.0, "resume_after": 5.0}
    assert brake_decision(**common, cooldown_active=False) is BrakeAction.PAUSE
    assert brake_decision(**common, cooldown_active=False, single_cause=True) is BrakeAction.NONE


def test_tier_limits_default_below_the_overload_and_critical_thresholds() -> None:
    s = Settings()
    limits = [company_limit(s, t) for t in (Tier.BASIC, Tier.PRO, Tier.ENTERPRISE)]
    assert limits == [100, 500, 2_000]
    assert max(limits) < s.health_critical_waiting < s.health_overload_waiting
    assert s.tenant_shed_share == 0.5 and s.company_limit_retry_after == 30


def test_the_top_list_must_be_long_enough_to_hold_a_noisy_tenant(monkeypatch) -> None:
    monkeypatch.setenv("IMPORTER_TENANT_SHED_SHARE", "0.05")
    monkeypatch.setenv("IMPORTER_HEALTH_TOP_TENANTS", "10")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("IMPORTER_HEALTH_TOP_TENANTS", "20")
    assert Settings().health_top_tenants == 20


def test_the_published_report_carries_the_tenant_view_through_redis() -> None:
    report = HealthReport(
        level=Level.OVERLOAD,
        reasons=[],
        waiting=10,
        active=0,
        deferred=0,
        failed_last_hour=0,
        oldest_waiting_age=1.0,
        oldest_age_is_lower_bound=False,
        workers_alive=0,
        breakers={},
        paused=None,
        intake_closed=None,
        counters={},
        computed_at=1.0,
        computed_by="test",
        tenants_top=[TenantWaiting("a", 8), TenantWaiting("b", 2)],
        tenants_pending_total=10,
        noisy_tenants=["a"],
        paused_tenants={"a": {"mode": "auto"}},
    )
    body = report.to_json()
    assert body["tenants"]["top_waiting"][0] == {"company_id": "a", "waiting": 8, "share": 0.8}
    back = HealthReport.from_json(json.loads(json.dumps(body)))
    assert back.noisy_tenants == ["a"] and back.tenants_pending_total == 10
    assert back.tenants_top == report.tenants_top and back.paused_tenants == {"a": {"mode": "auto"}}
    # A report published before this change (no tenant view) still reads, with no noisy tenant.
    del body["tenants"], body["paused_tenants"]
    old = HealthReport.from_json(body)
    assert old.noisy_tenants == [] and old.tenants_pending_total is None
