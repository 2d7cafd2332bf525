"""What an experiment is made of, in the spirit of the Chaos Toolkit.

An experiment states a **steady-state hypothesis** (probes, each with a tolerance), runs a
**method** (actions that inject a fault, wait for recovery, measure), and declares
**rollbacks** that undo whatever the method may have left broken. The runner
(:mod:`chaos.runner`) checks the hypothesis before and after the method and runs every
rollback whatever happened, so a proxy left disabled or a killed Redis node never outlives
the experiment that broke it.

Activities are async callables rather than Chaos Toolkit's JSON documents: our faults need
the stack's own objects (process handles, a Toxiproxy client), and a typed callable is
checked by the type checker where a JSON document would only fail at run time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ActivityKind = Literal["action", "probe"]


@dataclass(frozen=True)
class Tolerance:
    """Whether a probe's value is acceptable, with the words the journal shows for it."""

    describe: str
    accepts: Callable[[Any], bool]


def at_least(minimum: float, what: str = "") -> Tolerance:
    return Tolerance(
        f">= {minimum:g}{' ' + what if what else ''}", lambda value: value is not None and value >= minimum
    )


def equals(expected: object) -> Tolerance:
    return Tolerance(f"== {expected!r}", lambda value: value == expected)


def one_of(*allowed: object) -> Tolerance:
    return Tolerance(f"one of {', '.join(map(repr, allowed))}", lambda value: value in allowed)


@dataclass(frozen=True)
class Activity:
    """One step: an action (does something) or a probe (reads something, judged by a tolerance).

    ``run`` returns what the journal records as the activity's output (JSON-able). ``timeout``
    bounds it; ``pause_after`` waits after it (Chaos Toolkit's ``pauses.after``).
    """

    name: str
    run: Callable[[], Awaitable[Any]]
    timeout: float
    kind: ActivityKind = "action"
    tolerance: Tolerance | None = None
    pause_after: float = 0.0

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"{self.name}: timeout must be positive")
        if self.kind == "probe" and self.tolerance is None:
            raise ValueError(f"{self.name}: a probe needs a tolerance")


def action(name: str, run: Callable[[], Awaitable[Any]], *, timeout: float, pause_after: float = 0.0) -> Activity:
    return Activity(name=name, run=run, timeout=timeout, kind="action", pause_after=pause_after)


def probe(name: str, run: Callable[[], Awaitable[Any]], tolerance: Tolerance, *, timeout: float = 10.0) -> Activity:
    return Activity(name=name, run=run, timeout=timeout, kind="probe", tolerance=tolerance)


@dataclass
class Experiment:
    name: str
    title: str
    description: str
    hypothesis: list[Activity] = field(default_factory=list)
    method: list[Activity] = field(default_factory=list)
    rollbacks: list[Activity] = field(default_factory=list)
