"""Admission by the company's own load: tier limits and shedding the tenant causing congestion."""

import pytest

from importer.models import Tier
from importer.protection.admission import CompanyLoad, decide_admission
from importer.protection.health import Level


def decide(level, tier=Tier.PRO, vip=False, **load):
    return decide_admission(
        level,
        tier=tier,
        vip=vip,
        intake_closed=False,
        basic_defer=300.0,
        overload_retry_after=60,
        load=CompanyLoad(limit_retry_after=30, **load),
    )


@pytest.mark.parametrize("level", [None, Level.HEALTHY, Level.CRITICAL])
def test_a_company_at_its_limit_gets_429_company_limit_whatever_the_health(level) -> None:
    a = decide(level, active=100, limit=100)
    assert not a.admit and a.status == 429 and a.code == "company_limit" and a.retry_after == 30
    assert "limit" in a.message and "PRO" in a.message
    assert decide(level, active=99, limit=100).admit


@pytest.mark.parametrize("level", [Level.CRITICAL, Level.OVERLOAD])
@pytest.mark.parametrize("vip", [False, True])
def test_the_noisy_tenant_is_shed_at_critical_and_overload_vip_included(level, vip) -> None:
    a = decide(level, vip=vip, tier=Tier.ENTERPRISE, noisy=True)
    assert not a.admit and a.status == 429 and a.code == "tenant_shed" and a.retry_after == 60


@pytest.mark.parametrize("level", [Level.HEALTHY, Level.DEGRADED])
def test_a_noisy_tenant_is_not_shed_while_the_queue_copes(level) -> None:
    assert decide(level, noisy=True).admit


def test_at_overload_with_one_noisy_tenant_the_others_are_admitted_as_at_critical() -> None:
    pro = decide(Level.OVERLOAD, tier=Tier.PRO, noisy_elsewhere=True)
    assert pro.admit and pro.defer_by is None and pro.reason == "admitted_beside_noisy_tenant"
    basic = decide(Level.OVERLOAD, tier=Tier.BASIC, noisy_elsewhere=True)
    assert basic.admit and basic.defer_by == 300.0
    vip = decide(Level.OVERLOAD, tier=Tier.BASIC, vip=True, noisy_elsewhere=True)
    assert vip.admit and vip.defer_by is None and vip.priority


def test_at_overload_with_no_single_cause_everyone_gets_503() -> None:
    a = decide(Level.OVERLOAD)
    assert not a.admit and a.status == 503 and a.reason == "overload"


def test_at_critical_the_others_keep_their_normal_admission() -> None:
    assert decide(Level.CRITICAL, tier=Tier.PRO, noisy_elsewhere=True).defer_by is None
    assert decide(Level.CRITICAL, tier=Tier.BASIC, noisy_elsewhere=True).defer_by == 300.0
