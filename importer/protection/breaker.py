"""A circuit breaker per provider, its state shared by every process through Redis.

closed → open after ``breaker_failure_threshold`` consecutive failures (connection errors,
timeouts, 5xx; a 4xx or a 429 is the provider answering, so it counts as success) → half-open
``breaker_open_seconds`` later, where exactly one request at a time, across all workers, may
probe → closed when the probe succeeds, open again when it fails. While open, calls fail fast
with ``JobDeferred`` (the job is re-queued for when the breaker half-opens, without spending a
try); a probe holds a lease of ``breaker_probe_timeout`` so a prober that dies mid-request
cannot wedge the breaker in half-open.

Every transition runs in one Lua script that reads the clock with Redis ``TIME``, so workers on
machines with different clocks agree on when "60 s later" is, and two workers can never both
win the probe. Each state change is logged and kept in a capped Redis list (``{state, from, at,
reason}``) for operators and drills.

Hand-written on purpose: the maintained Redis-backed breaker libraries are either synchronous
only, or take nothing but a plain Redis URL (no Sentinel), and none of them limits half-open to
a single probe across processes, which is the property that keeps a recovering provider from
being hit by every worker at once.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from importer.errors import DependencyUnavailable, JobDeferred
from importer.logs import get_logger
from importer.protection import counters as names
from importer.protection.counters import Counters
from importer.protection.keys import breaker_history_key, breaker_key
from importer.settings import Settings

log = get_logger(__name__)

_REDIS_ERRORS = (TimeoutError, RedisError, OSError)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(enum.StrEnum):
    SUCCESS = "success"  # the provider answered (2xx, 4xx, 429, a malformed body)
    FAILURE = "failure"  # connection error, timeout, 5xx
    ABANDONED = "abandoned"  # the call never reached a verdict (cancelled, no rate-limit token)


# KEYS: state hash, history list. ARGV: op, token, threshold, open_ms, probe_ms, history_size, reason.
# Returns {decision-or-state, wait_ms, state, transition} (transition '' when none happened).
_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, hist = KEYS[1], KEYS[2]
local op, token = ARGV[1], ARGV[2]
local threshold, open_ms, probe_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local hist_size, reason = tonumber(ARGV[6]), ARGV[7]

local f = redis.call('HMGET', key, 'state', 'failures', 'opened_at', 'probe_token', 'probe_until')
local state = f[1] or 'closed'
local failures = tonumber(f[2] or '0')
local opened_at = tonumber(f[3] or '0')
local probe_token = f[4] or ''
local probe_until = tonumber(f[5] or '0')

local function move(new_state, why)
  redis.call('HSET', key, 'state', new_state, 'changed_at', now)
  redis.call('LPUSH', hist, cjson.encode({state = new_state, from = state, at = now / 1000, reason = why}))
  redis.call('LTRIM', hist, 0, hist_size - 1)
end

if op == 'admit' then
  if state == 'closed' then return {'allow', 0, state, ''} end
  if state == 'open' then
    local ready = opened_at + open_ms
    if now < ready then return {'reject', ready - now, state, ''} end
    redis.call('HSET', key, 'probe_token', token, 'probe_until', now + probe_ms)
    move('half_open', reason)
    return {'probe', 0, 'half_open', 'half_open'}
  end
  if probe_until > now then return {'reject', probe_until - now, state, ''} end
  redis.call('HSET', key, 'probe_token', token, 'probe_until', now + probe_ms)
  return {'probe', 0, state, ''}
elseif op == 'success' then
  if state == 'half_open' and probe_token == token then
    redis.call('HSET', key, 'failures', 0, 'probe_token', '', 'probe_until', 0)
    move('closed', reason)
    return {'closed', 0, 'closed', 'closed'}
  end
  if state == 'closed' and failures > 0 then redis.call('HSET', key, 'failures', 0) end
  return {state, 0, state, ''}
elseif op == 'failure' then
  if state == 'closed' then
    failures = failures + 1
    if failures >= threshold then
      redis.call('HSET', key, 'failures', failures, 'opened_at', now, 'probe_token', '', 'probe_until', 0)
      move('open', reason)
      return {'open', 0, 'open', 'open'}
    end
    redis.call('HSET', key, 'failures', failures)
    return {state, 0, state, ''}
  end
  if state == 'half_open' and probe_token == token then
    redis.call('HSET', key, 'opened_at', now, 'probe_token', '', 'probe_until', 0)
    move('open', reason)
    return {'open', 0, 'open', 'open'}
  end
  return {state, 0, state, ''}
elseif op == 'release' then
  if state == 'half_open' and probe_token == token then
    redis.call('HSET', key, 'probe_token', '', 'probe_until', 0)
  end
  return {state, 0, state, ''}
elseif op == 'reset' then
  redis.call('HSET', key, 'failures', 0, 'opened_at', 0, 'probe_token', '', 'probe_until', 0)
  if state ~= 'closed' then
    move('closed', reason)
    return {state, 0, 'closed', 'closed'}
  end
  return {state, 0, 'closed', ''}
end
return redis.error_reply('unknown breaker op ' .. tostring(op))
"""


@dataclass(frozen=True)
class Permit:
    """Permission for one provider call; a probe must be settled so the next probe can go."""

    provider: str
    token: str
    probe: bool


@dataclass(frozen=True)
class _Reply:
    verdict: str
    wait_ms: int
    state: BreakerState
    transition: str


class CircuitBreakers:
    def __init__(self, redis: Any, settings: Settings, counters: Counters) -> None:
        self._redis = redis
        self._settings = settings
        self._counters = counters
        self._script = redis.register_script(_SCRIPT)

    async def _call(self, op: str, provider: str, token: str = "", reason: str = "") -> _Reply:
        s = self._settings
        raw = await self._script(
            keys=[breaker_key(provider), breaker_history_key(provider)],
            args=[
                op,
                token,
                s.breaker_failure_threshold,
                int(s.breaker_open_seconds * 1000),
                int(s.breaker_probe_timeout * 1000),
                s.breaker_history_size,
                reason[:500],
            ],
        )
        verdict, wait_ms, state, transition = (_text(x) for x in raw)
        return _Reply(verdict, int(wait_ms), BreakerState(state), transition)

    async def admit(self, provider: str) -> Permit:
        """A permit to call ``provider`` now, or ``JobDeferred`` until the breaker may let one through."""
        token = uuid.uuid4().hex
        try:
            reply = await self._call("admit", provider, token, reason=self._half_open_reason())
        except _REDIS_ERRORS as exc:
            raise DependencyUnavailable(f"breaker store unavailable: {exc!r}") from exc
        if reply.transition:
            await self._announce(provider, reply.transition, self._half_open_reason())
        if reply.verdict == "allow":
            return Permit(provider, token, probe=False)
        if reply.verdict == "probe":
            log.info("breaker_probe", provider=provider)
            return Permit(provider, token, probe=True)
        wait = reply.wait_ms / 1000
        if reply.state is BreakerState.HALF_OPEN:
            # Another worker is probing; its verdict comes long before its lease runs out.
            wait = min(wait, self._settings.breaker_half_open_recheck)
        await self._counters.bump(names.BREAKER_REJECTIONS, detail=provider)
        raise JobDeferred(wait, f"{provider} circuit breaker is {reply.state.value}")

    async def settle(self, permit: Permit, outcome: Outcome, detail: str = "") -> None:
        """Record what the call learned; never raises (the call's own result matters more)."""
        op = {Outcome.SUCCESS: "success", Outcome.FAILURE: "failure", Outcome.ABANDONED: "release"}[outcome]
        if outcome is Outcome.SUCCESS:
            reason = "probe succeeded"
        elif permit.probe:
            reason = f"probe failed: {detail}"
        else:
            reason = f"{self._settings.breaker_failure_threshold} consecutive failures; last: {detail}"
        try:
            reply = await self._call(op, permit.provider, permit.token, reason=reason)
        except _REDIS_ERRORS as exc:
            # A lost verdict costs at most one more failure to open, or one probe lease to wait out.
            log.warning("breaker_record_failed", provider=permit.provider, outcome=outcome.value, error=repr(exc))
            return
        if reply.transition:
            await self._announce(permit.provider, reply.transition, reason)

    async def reset(self, provider: str, *, reason: str) -> BreakerState:
        """Close the breaker now (operator command); returns the state it was in."""
        reply = await self._call("reset", provider, reason=reason)
        if reply.transition:
            await self._announce(provider, reply.transition, reason)
        return BreakerState(reply.verdict)

    async def snapshot(self, provider: str) -> dict[str, Any]:
        raw: dict[Any, Any] = await self._redis.hgetall(breaker_key(provider))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return {
            "state": fields.get("state", BreakerState.CLOSED.value),
            "consecutive_failures": int(fields.get("failures") or 0),
            "opened_at": int(fields.get("opened_at") or 0) / 1000 or None,
            "changed_at": int(fields.get("changed_at") or 0) / 1000 or None,
            "probing": int(fields.get("probe_until") or 0) > 0,
        }

    async def history(self, provider: str, limit: int = 20) -> list[dict[str, Any]]:
        """Most recent first."""
        raw: list[Any] = await self._redis.lrange(breaker_history_key(provider), 0, max(0, limit - 1))
        return [json.loads(_text(item)) for item in raw]

    def _half_open_reason(self) -> str:
        return f"open for {self._settings.breaker_open_seconds:g}s; letting one probe through"

    async def _announce(self, provider: str, transition: str, reason: str) -> None:
        if transition == BreakerState.OPEN.value:
            await self._counters.bump(names.BREAKER_OPENS, detail=provider)
            log.warning("breaker_state_changed", provider=provider, state=transition, reason=reason, alert=True)
        else:
            log.info("breaker_state_changed", provider=provider, state=transition, reason=reason)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
