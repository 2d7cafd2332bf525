"""What a drill run records about itself: the settings its figures depend on, its notes, and
the checker totals that count as problems (run.json, the report's facts)."""

from __future__ import annotations

from lab.checker_inputs import CheckReport
from lab.drill_target import Target
from lab.sabotage import Sabotage
from lab.scenarios import Scenario
from reports.facts import CHECKER_ROWS


def run_settings(scenario: Scenario, target: Target, locust_workers: int, sabotage: Sabotage | None) -> dict[str, str]:
    """run.json's ``stack``: every setting the run's figures depend on, non-default ones by name."""
    catalogs = "; ".join(
        f"{c.jobs} x {c.products} products, {c.images_per_product} image(s) each "
        f"({', '.join(f'{d} {n}' for d, n in c.dialect_counts().items())})"
        for c in scenario.catalogs
    )
    w = scenario.workers
    workers = f"initial {w.initial}"
    if w.autoscale is not None:
        a = w.autoscale
        workers += (
            f"; autoscaled {a.min_workers}..{a.max_workers}, target {a.target_per_worker} jobs/worker, "
            f"cooldowns out {a.scale_out_cooldown_s:g} s / in {a.scale_in_cooldown_s:g} s"
        )
    processes = "1 local process" if locust_workers == 0 else f"master + {locust_workers} workers"
    settings = {
        "stack": target.description,
        "workers": workers,
        "load": (
            f"{scenario.users} users at {scenario.spawn_rate:g}/s, Locust {processes}, "
            f"bounds: load {scenario.run_time_s} s, drain {scenario.drain_timeout_s} s, "
            f"job {scenario.follow_timeout_s} s"
        ),
        "catalogs": catalogs,
        "companies": (
            ", ".join(f"{t.name}: {t.companies} {t.tier}" for t in scenario.tenants)
            if scenario.tenants
            else f"{scenario.companies} {scenario.tier}"
        ),
        "store rate limits": ", ".join(f"{d} {n}/min" for d, n in scenario.store_rate_limit_per_min.items()),
    }
    if not target.overrides:
        settings["importer settings"] = "all defaults"
    settings.update(dict(sorted(target.overrides.items())))
    if sabotage is not None:
        settings["sabotage"] = f"{sabotage} (checker self-test: this run is meant to fail)"
    return settings


def run_notes(scenario: Scenario, target: Target, attach: bool) -> list[str]:
    notes = [f"{o.name}={o.value}: {o.why}" for o in scenario.overrides if target.overrides.get(o.name) == o.value]
    if attach:
        wanted = scenario.importer_env
        differing = {k: v for k, v in wanted.items() if target.overrides.get(k) != v}
        if differing:
            notes.append(
                "attached stack: the scenario's settings "
                + ", ".join(f"{k}={v}" for k, v in differing.items())
                + " were NOT applied (the stack keeps the settings it was started with)"
            )
    if scenario.workers.autoscale is not None and scenario.workers.autoscale.why:
        notes.append(f"autoscaler bounds: {scenario.workers.autoscale.why}")
    return notes


def checker_problems(report: CheckReport) -> list[str]:
    """Every checker total that counts as a problem and is not zero (the report's own list)."""
    problems = []
    for key, label, _meaning, is_problem in CHECKER_ROWS:
        value = report.totals.get(key)
        if is_problem and isinstance(value, int | float) and value:
            problems.append(f"{label}: {value}")
    return problems
