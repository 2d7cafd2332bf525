"""Pausing the queue and closing intake: two Redis flags, and the emergency brake that sets them.

- **Pause** (``importer:queue:paused``): workers check it on every poll and stop *taking* jobs
  while it is there; running jobs finish. Set by hand (``POST /v1/ops/queue/pause``,
  ``importer ops pause``) or by the brake.
- **Intake closed** (``importer:intake:closed``): ``POST /v1/imports`` answers 503 "intake
  closed". Set by ``importer ops drain``; cleared by ``resume``.

The brake (run by the reconciler's health monitor) pauses the queue when health reaches
overload, with an alert. It resumes by itself once the pause has lasted ``brake_resume_after``
and health *improved*, which means: the level is below overload, **or** the backlog (waiting +
deferred jobs) did not grow while paused. The second clause is what lets a brake resume in the
situation it creates: while paused nothing drains, so the level often stays at overload, but
the API is shedding load (503) and the backlog stops growing; that is the sign the flood has
been cut off and the workers may go again. If the backlog did grow, the pause is re-armed for
another period from the new backlog, with a new alert. After an automatic resume the brake
does not pause again for ``brake_cooldown`` seconds (hysteresis): the backlog is still at
overload when workers restart, and pausing at once would undo the resume. A manual pause is
never resumed automatically, and an automatic pause never overwrites a manual one.

When the overload has a single cause (one tenant holds at least ``tenant_shed_share`` of the
waiting jobs) the queue-wide brake stays off: the tenant brake (``tenant_brake``) pauses that
tenant's starts alone, with these same rules, and everyone else keeps going.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from importer.logs import get_logger
from importer.protection import counters as names
from importer.protection.counters import Counters
from importer.protection.health import HealthReport, Level
from importer.protection.keys import BRAKE_COOLDOWN, INTAKE_CLOSED, PAUSED
from importer.settings import Settings

log = get_logger(__name__)

PauseMode = Literal["manual", "auto"]

# Delete the pause flag only if it is still the exact value we decided on (compare-and-delete):
# an operator's manual pause set in between must survive an automatic resume.
_DELETE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class PauseState:
    mode: PauseMode
    reason: str
    at: float
    by: str
    backlog_at_pause: int | None = None
    raw: str = ""

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("raw")
        return body


def _encode(state: PauseState) -> str:
    return json.dumps(state.to_json(), sort_keys=True)


def _decode(raw: Any) -> PauseState | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        body = json.loads(text)
        mode: PauseMode = "auto" if body.get("mode") == "auto" else "manual"
        return PauseState(
            mode=mode,
            reason=str(body.get("reason", "")),
            at=float(body.get("at", 0.0)),
            by=str(body.get("by", "")),
            backlog_at_pause=body.get("backlog_at_pause"),
            raw=text,
        )
    except (ValueError, TypeError, AttributeError):
        # Someone wrote the flag by hand: still a pause, and one we must not lift on our own.
        return PauseState(mode="manual", reason=text[:200], at=0.0, by="unknown", raw=text)


def decode_pause(raw: Any) -> PauseState | None:
    """A pause flag's value as a state (also used for the tenant brake's per-tenant pauses)."""
    return _decode(raw)


def encode_pause(state: PauseState) -> str:
    return _encode(state)


async def read_pause(redis: Any) -> PauseState | None:
    return _decode(await redis.get(PAUSED))


async def pause_queue(redis: Any, *, reason: str, by: str) -> PauseState:
    """Manual pause: replaces any pause (an automatic one becomes manual, never auto-resumed)."""
    state = PauseState(mode="manual", reason=reason, at=time.time(), by=by)
    await redis.set(PAUSED, _encode(state))
    log.warning("queue_paused", mode="manual", reason=reason, by=by)
    return state


async def resume_queue(redis: Any, *, by: str, cooldown: float) -> tuple[PauseState | None, bool]:
    """Lift the pause and reopen intake; returns (the pause lifted, whether intake was closed).

    Lifting a pause also starts the brake's cooldown: an operator who resumes an overloaded
    queue means it, and the brake must not pause it again on its next look.
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(PAUSED)
        pipe.get(INTAKE_CLOSED)
        pipe.delete(PAUSED, INTAKE_CLOSED)
        raw_pause, raw_intake, _ = await pipe.execute()
    previous = _decode(raw_pause)
    if previous is not None and cooldown > 0:
        await redis.set(BRAKE_COOLDOWN, str(time.time()), px=int(cooldown * 1000))
    log.info("queue_resumed", by=by, was_paused=previous is not None, intake_was_closed=raw_intake is not None)
    return previous, raw_intake is not None


async def read_intake_closed(redis: Any) -> dict[str, Any] | None:
    raw = await redis.get(INTAKE_CLOSED)
    if raw is None:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"reason": str(raw)[:200]}
    return body if isinstance(body, dict) else {"reason": str(body)}


async def close_intake(redis: Any, *, reason: str, by: str) -> None:
    await redis.set(INTAKE_CLOSED, json.dumps({"reason": reason, "by": by, "at": time.time()}))
    log.warning("intake_closed", reason=reason, by=by)


class BrakeAction(enum.StrEnum):
    NONE = "none"
    PAUSE = "pause"
    RESUME = "resume"
    HOLD = "hold"  # paused long enough, but health did not improve: re-arm for another period


def brake_decision(
    *,
    level: Level,
    backlog: int,
    pause: PauseState | None,
    now: float,
    cooldown_active: bool,
    resume_after: float,
    single_cause: bool = False,
) -> BrakeAction:
    """What the brake should do now; pure, so every branch is unit-tested.

    ``single_cause``: the overload is one noisy tenant's doing (see fairness); the tenant brake
    pauses that tenant alone, so the queue-wide brake does not pause everyone for it.
    """
    if pause is None:
        overloaded = level is Level.OVERLOAD and not single_cause
        return BrakeAction.PAUSE if overloaded and not cooldown_active else BrakeAction.NONE
    if pause.mode != "auto" or now - pause.at < resume_after:
        return BrakeAction.NONE
    grew = pause.backlog_at_pause is None or backlog > pause.backlog_at_pause
    improved = level is not Level.OVERLOAD or not grew
    return BrakeAction.RESUME if improved else BrakeAction.HOLD


class EmergencyBrake:
    def __init__(self, settings: Settings, redis: Any, counters: Counters) -> None:
        self._settings = settings
        self._redis = redis
        self._counters = counters
        self._delete_if_same = redis.register_script(_DELETE_IF_SAME)

    async def evaluate(self, report: HealthReport) -> BrakeAction:
        s = self._settings
        pause = await read_pause(self._redis)
        cooldown_active = bool(await self._redis.exists(BRAKE_COOLDOWN))
        backlog = report.waiting + report.deferred
        action = brake_decision(
            level=report.level,
            backlog=backlog,
            pause=pause,
            now=time.time(),
            cooldown_active=cooldown_active,
            resume_after=s.brake_resume_after,
            single_cause=bool(report.noisy_tenants),
        )
        if action is BrakeAction.PAUSE:
            await self._auto_pause(report, backlog)
        elif action is BrakeAction.RESUME and pause is not None:
            await self._auto_resume(report, backlog, pause)
        elif action is BrakeAction.HOLD and pause is not None:
            await self._hold(report, backlog, pause)
        return action

    async def _auto_pause(self, report: HealthReport, backlog: int) -> None:
        state = PauseState(
            mode="auto",
            reason=f"queue overload: {report.waiting} waiting, oldest {_age(report.oldest_waiting_age)}",
            at=time.time(),
            by="emergency-brake",
            backlog_at_pause=backlog,
        )
        if not await self._redis.set(PAUSED, _encode(state), nx=True):
            return  # someone paused first (an operator): theirs stands
        await self._counters.bump(names.BRAKE_AUTO_PAUSES)
        log.error(
            "queue_auto_paused",
            alert=True,
            reason=state.reason,
            waiting=report.waiting,
            deferred=report.deferred,
            resume_check_in=self._settings.brake_resume_after,
        )

    async def _auto_resume(self, report: HealthReport, backlog: int, pause: PauseState) -> None:
        if not await self._delete_if_same(keys=[PAUSED], args=[pause.raw]):
            return  # the pause changed under us (an operator took over): leave it
        cooldown_ms = int(self._settings.brake_cooldown * 1000)
        if cooldown_ms > 0:
            await self._redis.set(BRAKE_COOLDOWN, str(time.time()), px=cooldown_ms)
        await self._counters.bump(names.BRAKE_AUTO_RESUMES)
        log.warning(
            "queue_auto_resumed",
            level=report.level.value,
            backlog=backlog,
            backlog_at_pause=pause.backlog_at_pause,
            paused_for=round(time.time() - pause.at, 1),
            cooldown=self._settings.brake_cooldown,
        )

    async def _hold(self, report: HealthReport, backlog: int, pause: PauseState) -> None:
        renewed = PauseState(
            mode="auto",
            reason=pause.reason,
            at=time.time(),
            by=pause.by,
            backlog_at_pause=backlog,
        )
        # Compare-and-set through the same guard: only replace the pause we read.
        if not await self._delete_if_same(keys=[PAUSED], args=[pause.raw]):
            return
        await self._redis.set(PAUSED, _encode(renewed), nx=True)
        log.error(
            "queue_brake_held",
            alert=True,
            level=report.level.value,
            backlog=backlog,
            backlog_at_pause=pause.backlog_at_pause,
            detail="backlog grew while paused; checking again after another period",
        )


def _age(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.0f}s"
