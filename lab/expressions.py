"""k6-style threshold expressions: ``p95(job_duration{products<100}) < 5m``.

Hand-written on purpose: k6 evaluates its thresholds in Go inside k6, and no maintained
Python library parses or evaluates that syntax; a general expression engine would accept far
more than a criterion should say. The grammar is small enough to read in one screen::

    threshold := term OP value [ "*" term ]           -- "* term": the target is value x that term
    term      := AGG "(" series ")" | series          -- a bare series must hold one value
    series    := NAME [ "{" filter ("," filter)* "}" ]
    filter    := NAME FOP (NUMBER | STRING | NAME)    -- numbers compare numerically
    value     := NUMBER [ "ms" | "s" | "m" | "h" | "%" ]
    AGG       := p50 | p90 | p95 | p99 | p<number> | avg | min | max | count | sum | rate
    OP        := < | <= | > | >= | == | !=            FOP := OP | =

Durations are seconds throughout (``5m`` is 300); ``rate`` is the fraction of non-zero values,
as in k6. A target may be another measurement of the same run times a factor
(``p95(job_duration{size_class="beside-flood"}) <= 2 * p95(job_duration{size_class="alone"})``):
a fairness criterion compares two phases of one run, never a figure from another machine.
What "no data" means is decided here once: an unrecorded series, or an aggregation other than
``count`` over no values, is *not measured* (neither pass nor fail); so is either side of
``value * term``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "%": 0.01}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
AGGREGATIONS = ("avg", "min", "max", "count", "sum", "rate")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?P<unit>ms|s|m|h|%)?(?![A-Za-z0-9_])
      | (?P<string>"[^"]*"|'[^']*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.\d+)?)
      | (?P<op><=|>=|==|!=|<|>|=)
      | (?P<punct>[(){},*])
    )""",
    re.VERBOSE,
)


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; the message shows where."""


@dataclass(frozen=True)
class LabelFilter:
    label: str
    op: str
    value: str | float

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.label)
        if have is None:
            return False
        if isinstance(self.value, float):
            try:
                return COMPARE[self.op](float(have), self.value)
            except ValueError:
                return False
        if self.op not in ("==", "!="):
            raise ExpressionError(f"label {self.label}: {self.op} needs a number, got {self.value!r}")
        return (have == self.value) == (self.op == "==")

    def __str__(self) -> str:
        value = f'"{self.value}"' if isinstance(self.value, str) else _number(self.value)
        return f"{self.label}{self.op}{value}"


@dataclass(frozen=True)
class Term:
    """The right-hand measurement of ``value * term``: aggregated like the left-hand side."""

    aggregation: str | None
    percentile: float | None
    metric: str
    filters: tuple[LabelFilter, ...]

    @property
    def subject(self) -> str:
        series = self.metric + ("{" + ",".join(str(f) for f in self.filters) + "}" if self.filters else "")
        return f"{self.aggregation}({series})" if self.aggregation else series


@dataclass(frozen=True)
class Threshold:
    text: str
    aggregation: str | None  # None: the bare value of a one-value series
    percentile: float | None
    metric: str
    filters: tuple[LabelFilter, ...]
    op: str
    target: float  # with a reference: the factor it is multiplied by
    unit: str  # "", or the unit the target was written in ("s", "m", "%", ...)
    reference: Term | None = None  # ``value * term``: the target is measured in the same run

    @property
    def subject(self) -> str:
        series = self.metric + ("{" + ",".join(str(f) for f in self.filters) + "}" if self.filters else "")
        return f"{self.aggregation}({series})" if self.aggregation else series

    def format_value(self, value: float | None) -> str:
        """A measured value in the unit family the target was written in."""
        if value is None:
            return "—"
        if math.isinf(value):
            return "∞"
        if self.unit in ("ms", "s", "m", "h"):
            return format_duration(value)
        if self.unit == "%":
            return f"{value * 100:.2f}%"
        if self.aggregation == "count":
            return str(int(value))
        return _number(value)

    @property
    def target_text(self) -> str:
        if self.reference is not None:
            return f"{self.op} {_number(self.target)} x {self.reference.subject}"
        return f"{self.op} {self.format_value(self.target)}"


class MetricSource(Protocol):
    def values(self, metric: str, filters: Sequence[LabelFilter]) -> list[float] | None:
        """The series' values after filtering, or None when the series was never recorded."""
        ...


@dataclass(frozen=True)
class Outcome:
    threshold: Threshold
    measured: float | None
    passed: bool | None  # None: not measured
    samples: int
    note: str = ""
    reference: float | None = None  # the measured reference term of ``value * term``

    @property
    def measured_text(self) -> str:
        t = self.threshold
        text = f"{t.subject} = {t.format_value(self.measured)}"
        if t.reference is not None and self.reference is not None:
            text += f"; {t.reference.subject} = {t.format_value(self.reference)}"
            if self.ratio is not None:
                text += f"; ratio {self.ratio:.2f}"
        return text

    @property
    def ratio(self) -> float | None:
        """measured / reference, for ``value * term`` thresholds (None when undefined)."""
        if self.measured is None or not self.reference:
            return None
        return self.measured / self.reference


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{_number(round(seconds, 1))} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes >= 120:
        return f"{seconds / 3600:.1f} h"
    return f"{minutes} min" if rest == 0 else f"{minutes} min {rest} s"


# --- parsing ----------------------------------------------------------------------------------


class _Tokens:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, str | None, int]] = []  # (kind, text, unit, position)
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise self.error(
                    "unexpected character", position + len(text[position:]) - len(text[position:].lstrip())
                )
            kind = match.lastgroup if match.lastgroup != "unit" else "number"
            assert kind is not None
            start = match.start(kind)
            self.items.append((kind, match.group(kind), match.group("unit") if kind == "number" else None, start))
            position = match.end()
        self.index = 0

    def error(self, message: str, position: int | None = None) -> ExpressionError:
        if position is None:
            position = self.position()
        return ExpressionError(f"{message} at column {position + 1}:\n    {self.text}\n    {' ' * position}^")

    def position(self) -> int:
        return self.items[self.index][3] if self.index < len(self.items) else len(self.text)

    def peek(self) -> tuple[str, str]:
        if self.index >= len(self.items):
            return ("end", "")
        kind, text, _, _ = self.items[self.index]
        return kind, text

    def take(self, kind: str, text: str | None = None) -> tuple[str, str | None]:
        have_kind, have_text = self.peek()
        if have_kind != kind or (text is not None and have_text != text):
            wanted = repr(text) if text else kind
            raise self.error(
                f"expected {wanted}, found {have_text!r}" if have_text else f"expected {wanted}, found the end"
            )
        _, value, unit, _ = self.items[self.index]
        self.index += 1
        return value, unit


def _aggregation(name: str) -> tuple[str, float | None] | None:
    if name in AGGREGATIONS:
        return name, None
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", name)
    if match:
        percentile = float(match.group(1))
        if not 0 <= percentile <= 100:
            raise ExpressionError(f"percentile {name} is outside p0..p100")
        return name, percentile
    return None


def _term(tokens: _Tokens) -> Term:
    name_at = tokens.position()
    name, _ = tokens.take("name")
    aggregation: str | None = None
    percentile: float | None = None
    if tokens.peek() == ("punct", "("):
        agg = _aggregation(name)
        if agg is None:
            known = f"p50/p90/p95/p99/pNN, {', '.join(AGGREGATIONS)}"
            raise tokens.error(f"unknown aggregation {name!r} (use {known})", name_at)
        aggregation, percentile = agg
        tokens.take("punct", "(")
        name, _ = tokens.take("name")
        filters = _filters(tokens)
        tokens.take("punct", ")")
    else:
        filters = _filters(tokens)
    return Term(aggregation, percentile, name, tuple(filters))


def parse_threshold(text: str) -> Threshold:
    tokens = _Tokens(text)
    left = _term(tokens)
    op_at = tokens.position()
    op, _ = tokens.take("op")
    if op not in COMPARE:
        raise tokens.error(f"use == to compare, not {op}", op_at)
    number, unit = tokens.take("number")
    reference: Term | None = None
    if tokens.peek() == ("punct", "*"):
        if unit:
            raise tokens.error(f"a factor has no unit (the reference term gives it), not {unit!r}")
        tokens.take("punct", "*")
        reference = _term(tokens)
    if tokens.peek()[0] != "end":
        raise tokens.error("unexpected text after the target")
    assert number is not None
    return Threshold(
        text=text.strip(),
        aggregation=left.aggregation,
        percentile=left.percentile,
        metric=left.metric,
        filters=left.filters,
        op=op,
        target=float(number) * UNITS.get(unit or "", 1.0),
        unit=unit or "",
        reference=reference,
    )


def _filters(tokens: _Tokens) -> list[LabelFilter]:
    if tokens.peek() != ("punct", "{"):
        return []
    tokens.take("punct", "{")
    filters: list[LabelFilter] = []
    for _ in range(64):  # bounded: no real criterion filters on more labels than this
        label, _ = tokens.take("name")
        op, _ = tokens.take("op")
        op = "==" if op == "=" else op
        kind, raw = tokens.peek()
        if kind == "number":
            number, unit = tokens.take("number")
            value: str | float = float(number or 0) * UNITS.get(unit or "", 1.0)
        elif kind in ("string", "name"):
            tokens.take(kind)
            value = raw[1:-1] if kind == "string" else raw
        else:
            raise tokens.error("expected a label value")
        filters.append(LabelFilter(label=label, op=op, value=value))
        if tokens.peek() == ("punct", ","):
            tokens.take("punct", ",")
            continue
        tokens.take("punct", "}")
        return filters
    raise tokens.error("too many label filters")


# --- evaluation -------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), safe with infinities."""
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    if ordered[low] == ordered[high] or math.isinf(ordered[high]):
        return ordered[high] if rank > low else ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def aggregate(threshold: Threshold | Term, values: list[float]) -> float | None:
    agg = threshold.aggregation
    if agg == "count":
        return float(len(values))
    if not values:
        return None
    if agg is None:
        if len(values) > 1:
            raise ExpressionError(
                f"{threshold.metric} has {len(values)} values; aggregate it, e.g. max({threshold.metric})"
            )
        return values[0]
    if threshold.percentile is not None:
        return percentile(values, threshold.percentile)
    if agg == "avg":
        return math.fsum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "sum":
        return math.fsum(values)
    if agg == "rate":
        return sum(1 for v in values if v != 0) / len(values)
    raise ExpressionError(f"unknown aggregation {agg!r}")


def evaluate_threshold(threshold: Threshold, metrics: MetricSource) -> Outcome:
    values = metrics.values(threshold.metric, threshold.filters)
    if values is None:
        return Outcome(threshold, None, None, 0, note=f"{threshold.metric} not recorded in this run")
    measured = aggregate(threshold, values)
    if measured is None:
        return Outcome(threshold, None, None, 0, note=f"no {threshold.subject} values in this run")
    ref = threshold.reference
    if ref is None:
        return Outcome(threshold, measured, COMPARE[threshold.op](measured, threshold.target), len(values))
    ref_values = metrics.values(ref.metric, ref.filters)
    if ref_values is None:
        return Outcome(threshold, measured, None, len(values), note=f"{ref.metric} not recorded in this run")
    reference = aggregate(ref, ref_values)
    if reference is None:
        return Outcome(threshold, measured, None, len(values), note=f"no {ref.subject} values in this run")
    target = threshold.target * reference
    passed = COMPARE[threshold.op](measured, target)
    note = f"target {_number(threshold.target)} x {_number(reference)} = {_number(target)}"
    return Outcome(threshold, measured, passed, len(values) + len(ref_values), note=note, reference=reference)
