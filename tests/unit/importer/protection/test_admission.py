import pytest

from importer.models import Tier
from importer.protection.admission import decide_admission
from importer.protection.health import Level


def decide(level: Level | None, tier: Tier, vip: bool = False, closed: bool = False):
    return decide_admission(level, tier=tier, vip=vip, intake_closed=closed, basic_defer=300.0, overload_retry_after=60)


@pytest.mark.parametrize("tier", list(Tier))
@pytest.mark.parametrize("level", [None, Level.HEALTHY, Level.DEGRADED])
def test_everyone_is_admitted_at_once_while_healthy_or_health_unknown(level: Level | None, tier: Tier) -> None:
    a = decide(level, tier)
    assert a.admit and a.defer_by is None


def test_at_critical_basic_is_deferred_and_the_others_are_not() -> None:
    assert decide(Level.CRITICAL, Tier.ENTERPRISE).defer_by is None
    assert decide(Level.CRITICAL, Tier.PRO).defer_by is None
    basic = decide(Level.CRITICAL, Tier.BASIC)
    assert basic.admit and basic.defer_by == 300.0


def test_a_vip_is_never_deferred() -> None:
    a = decide(Level.CRITICAL, Tier.BASIC, vip=True)
    assert a.admit and a.defer_by is None and a.priority


@pytest.mark.parametrize("tier", list(Tier))
@pytest.mark.parametrize("vip", [False, True])
def test_overload_refuses_everyone_with_retry_after(tier: Tier, vip: bool) -> None:
    a = decide(Level.OVERLOAD, tier, vip=vip)
    assert not a.admit and a.retry_after == 60 and "overloaded" in a.message


def test_closed_intake_wins_over_everything() -> None:
    a = decide(Level.HEALTHY, Tier.ENTERPRISE, vip=True, closed=True)
    assert not a.admit and a.reason == "intake_closed" and "intake closed" in a.message
