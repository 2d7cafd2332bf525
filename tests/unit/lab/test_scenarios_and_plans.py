"""Scenarios as data, and the plans built from them: validated early, deterministic, interleaved."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lab.plans import Company, SetupError, StoreRequest, build_plan, interleave, store_requests
from lab.scenarios import (
    CatalogClass,
    Scenario,
    ScenarioError,
    UnknownScenarioError,
    get_scenario,
    load_scenarios,
)
from loadtests.plan import NotLoopbackError

API = "http://127.0.0.1:8000"


def scenario(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "mix",
        "kind": "load",
        "description": "a test scenario of three size classes",
        "companies": 3,
        "users": 10,
        "spawn_rate": 5,
        "run_time_s": 60,
        "drain_timeout_s": 60,
        "catalogs": [
            {"size_class": "10", "jobs": 6, "products": 10, "images_per_product": 1},
            {"size_class": "100", "jobs": 3, "products": 100, "images_per_product": 2, "dialects": {"shopify": 1}},
            {"size_class": "1000", "jobs": 1, "products": 1000},
        ],
    }
    data.update(overrides)
    return Scenario.model_validate(data)


def test_the_shipped_scenarios_are_valid_and_bounded() -> None:
    scenarios = load_scenarios()
    assert {"smoke", "concurrent-1000", "job-sizes", "images-10k"} <= set(scenarios)
    assert scenarios["concurrent-1000"].total_jobs == 1000
    assert scenarios["images-10k"].total_images >= 10_000
    assert {c.products for c in scenarios["job-sizes"].catalogs} == {10, 100, 1000}
    smoke = scenarios["smoke"]
    assert smoke.kind == "smoke" and smoke.run_time_s + smoke.drain_timeout_s < 120
    for s in scenarios.values():
        assert s.users <= 5000 and s.run_time_s <= 4 * 3600
        for override in s.overrides:
            assert len(override.why) > 20, f"{s.name}: {override.name} needs its reason"


def test_queue_start_limit_override_is_explicit_where_1000_jobs_need_it() -> None:
    env = get_scenario("concurrent-1000").importer_env
    assert int(env["IMPORTER_QUEUE_START_LIMIT_PER_MIN"]) >= 1000 / 4  # 1,000 starts inside P1's 5 minutes


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(UnknownScenarioError, match=r"known scenarios: .*smoke"):
        get_scenario("smok")


def test_dialect_weights_become_exact_counts() -> None:
    catalog = CatalogClass(size_class="x", jobs=5, products=1, dialects={"roastify": 1, "shopify": 1})
    counts = catalog.dialect_counts()
    assert sum(counts.values()) == 5 and set(counts) == {"roastify", "shopify"}
    assert CatalogClass(size_class="x", jobs=3, products=1, dialects={"shopify": 2}).dialect_counts() == {"shopify": 3}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"workers": {"initial": 1, "autoscale": {"min_workers": 3, "max_workers": 2}}}, "min_workers 3 > max_workers"),
        ({"workers": {"initial": 9, "autoscale": {"min_workers": 1, "max_workers": 4}}}, "outside autoscale"),
        (
            {"overrides": [{"name": "IMPORTER_ROASTIFY_RATE_LIMIT_PER_MIN", "value": "500", "why": "faster, please"}]},
            "above the stores' own roastify limit",
        ),
        (
            {
                "overrides": [
                    {"name": "IMPORTER_X", "value": "1", "why": "a reason long enough"},
                    {"name": "IMPORTER_X", "value": "2", "why": "a reason long enough"},
                ]
            },
            "overridden twice",
        ),
        ({"overrides": [{"name": "PATH", "value": "/", "why": "a reason long enough"}]}, "IMPORTER_"),
        ({"users": 0}, "users"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_scenarios_are_refused_with_a_reason(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scenario(**overrides)


def test_a_broken_scenarios_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "scenarios.toml"
    path.write_text('[[scenario]]\nname = "x"\n')
    with pytest.raises(ScenarioError, match=f"{path}: scenario x"):
        load_scenarios(path)
    path.write_text("not toml = = =")
    with pytest.raises(ScenarioError, match="unreadable"):
        load_scenarios(path)


def test_interleave_spreads_each_kind_evenly() -> None:
    assert interleave({"a": 2, "b": 2}) == ["a", "b", "a", "b"]
    assert interleave({"a": 1, "b": 3}) == ["b", "a", "b", "b"] or Counter(interleave({"a": 1, "b": 3})) == {
        "a": 1,
        "b": 3,
    }


def test_store_requests_follow_the_scenario_exactly_and_deterministically() -> None:
    s = scenario()
    requests = store_requests(s)
    assert requests == store_requests(s)
    assert [r.order for r in requests] == list(range(10))
    assert Counter(r.size_class for r in requests) == {"10": 6, "100": 3, "1000": 1}
    assert len({r.seed for r in requests}) == 10
    assert all(r.dialect == "shopify" for r in requests if r.size_class == "100")
    assert all(r.rate_limit_per_min == {"roastify": 100, "shopify": 120}[r.dialect] for r in requests)
    assert requests[0].body()["products"] == requests[0].products
    # Interleaved: the big job is not left to the end, and the classes alternate.
    sizes = [r.size_class for r in requests]
    assert sizes.index("1000") not in (0, len(sizes) - 1)
    assert sizes[:3] != ["10", "10", "10"]


def test_build_plan_gives_each_store_one_assignment_and_spreads_companies() -> None:
    s = scenario()
    companies = [Company(id=f"c{i}", api_key=f"k{i}", name=f"n{i}") for i in range(3)]
    stores: list[tuple[StoreRequest, str]] = [(r, f"st_{r.order}") for r in reversed(store_requests(s))]
    plan = build_plan(s, API, companies, stores, records_dir="/tmp/records")
    assert [a.index for a in plan.assignments] == list(range(10))
    assert [a.store_id for a in plan.assignments] == [f"st_{i}" for i in range(10)]
    assert Counter(a.company_id for a in plan.assignments) == {"c0": 4, "c1": 3, "c2": 3}
    assert all(a.api_key == f"k{a.company_id[1:]}" for a in plan.assignments)
    assert plan.follow.job_timeout_s == s.run_time_s
    assert plan.records_dir == "/tmp/records"
    with pytest.raises(NotLoopbackError):
        build_plan(s, "http://10.1.1.1:8000", companies, stores)
    with pytest.raises(SetupError):
        build_plan(s, API, [], stores)
