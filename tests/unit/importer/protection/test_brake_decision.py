import pytest

from importer.protection.health import Level
from importer.protection.pause import BrakeAction, PauseState, brake_decision


def auto(at: float = 0.0, backlog: int | None = 100) -> PauseState:
    return PauseState(mode="auto", reason="overload", at=at, by="emergency-brake", backlog_at_pause=backlog)


def decide(level: Level, backlog: int, pause: PauseState | None, now: float = 1000.0, cooldown: bool = False):
    return brake_decision(
        level=level, backlog=backlog, pause=pause, now=now, cooldown_active=cooldown, resume_after=300.0
    )


@pytest.mark.parametrize("level", [Level.HEALTHY, Level.DEGRADED, Level.CRITICAL])
def test_only_overload_pauses(level: Level) -> None:
    assert decide(level, 10, None) is BrakeAction.NONE
    assert decide(Level.OVERLOAD, 10, None) is BrakeAction.PAUSE


def test_cooldown_after_a_resume_prevents_an_immediate_new_pause() -> None:
    assert decide(Level.OVERLOAD, 10, None, cooldown=True) is BrakeAction.NONE


def test_no_resume_before_the_interval() -> None:
    assert decide(Level.HEALTHY, 0, auto(at=800.0)) is BrakeAction.NONE


def test_resumes_when_below_overload() -> None:
    assert decide(Level.CRITICAL, 500, auto(backlog=100)) is BrakeAction.RESUME


def test_resumes_at_overload_when_the_backlog_did_not_grow() -> None:
    # The API shed load while paused: nothing drained, but nothing was added either.
    assert decide(Level.OVERLOAD, 100, auto(backlog=100)) is BrakeAction.RESUME
    assert decide(Level.OVERLOAD, 90, auto(backlog=100)) is BrakeAction.RESUME


def test_holds_when_the_backlog_grew_at_overload() -> None:
    assert decide(Level.OVERLOAD, 101, auto(backlog=100)) is BrakeAction.HOLD


def test_a_manual_pause_is_never_lifted() -> None:
    manual = PauseState(mode="manual", reason="maintenance", at=0.0, by="ops")
    for level in Level:
        assert decide(level, 0, manual, now=10_000.0) is BrakeAction.NONE
