"""Misbehaviour on demand: latency, error responses and outages, per store or for all stores.

Error choices come from a RNG seeded when the rule is set, so a run that sends requests in the
same order sees the same failures. A store's own rule wins over the all-stores rule (they do
not add up), which keeps "what is this store suffering now" a one-line answer.

Delivery faults change how a good answer travels, not what it says: ``gzip_bomb`` sends the
page (or image) gzip-encoded behind ``bomb_bytes`` of whitespace that compress ~1000:1 (a page
stays valid JSON once decoded, so only a size cap counted after decompression catches it);
``trickle`` sends ``trickle_bytes_per_s`` bytes a second, each read arriving well within any
per-read timeout. ``image_base_url`` makes the store's pages list their images under another
base URL (a loopback port, a private address, another scheme), as a hostile catalog would.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RequestKind = Literal["api", "image"]
Delivery = Literal["normal", "gzip_bomb", "trickle"]
DEFAULT_BOMB_BYTES = 512 * 1024 * 1024
MAX_BOMB_BYTES = 4 * 1024 * 1024 * 1024
DEFAULT_TRICKLE_BYTES_PER_S = 4


@dataclass(frozen=True)
class FaultRule:
    store_id: str | None = None  # None: every store
    error_rate: float = 0.0
    error_status: int = 500
    latency_ms: int = 0
    outage: bool = False
    apply_to_images: bool = False
    seed: int = 0
    delivery: Delivery = "normal"
    bomb_bytes: int = DEFAULT_BOMB_BYTES
    trickle_bytes_per_s: int = DEFAULT_TRICKLE_BYTES_PER_S
    image_base_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Armed:
    rule: FaultRule
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.rule.seed)


class FaultBook:
    def __init__(self) -> None:
        self._rules: dict[str | None, _Armed] = {}

    def set(self, rule: FaultRule) -> None:
        """Replaces the rule of the same scope and re-seeds its RNG."""
        self._rules[rule.store_id] = _Armed(rule)

    def clear(self) -> int:
        n = len(self._rules)
        self._rules.clear()
        return n

    def rules(self) -> list[FaultRule]:
        return [armed.rule for armed in self._rules.values()]

    def _armed_for(self, store_id: str, kind: RequestKind) -> _Armed | None:
        armed = self._rules.get(store_id) or self._rules.get(None)
        if armed is None or (kind == "image" and not armed.rule.apply_to_images):
            return None
        return armed

    def latency_s(self, store_id: str, kind: RequestKind) -> float:
        armed = self._armed_for(store_id, kind)
        return armed.rule.latency_ms / 1000 if armed else 0.0

    def outage(self, store_id: str, kind: RequestKind) -> bool:
        armed = self._armed_for(store_id, kind)
        return bool(armed and armed.rule.outage)

    def error_status(self, store_id: str, kind: RequestKind) -> int | None:
        """Rolls the rule's RNG once per call: call it exactly once per request."""
        armed = self._armed_for(store_id, kind)
        if armed is None or armed.rule.error_rate <= 0:
            return None
        if armed.rng.random() < armed.rule.error_rate:
            return armed.rule.error_status
        return None

    def delivery(self, store_id: str, kind: RequestKind) -> FaultRule | None:
        """The rule whose delivery fault applies to this request, if any."""
        armed = self._armed_for(store_id, kind)
        if armed is None or armed.rule.delivery == "normal":
            return None
        return armed.rule

    def image_base_url(self, store_id: str) -> str | None:
        """The base URL the store's pages should list their images under, if a rule sets one."""
        armed = self._armed_for(store_id, "api")
        return armed.rule.image_base_url if armed else None
