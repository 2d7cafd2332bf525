"""messy-catalog: every data-fault kind the fake provider offers, spread through large catalogs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lab.fake_provider.catalog import IMAGE_FAULTS, MALFORMED_KINDS
from lab.fake_provider.stores import StoreRequest as ProviderStoreRequest
from lab.plans import store_requests
from lab.scenarios import CatalogClass, get_scenario


def test_the_scenario_exercises_every_fault_kind_the_provider_offers() -> None:
    s = get_scenario("messy-catalog")
    classes = {c.size_class: c for c in s.catalogs}
    records = classes["messy-records"]
    assert set(records.record_faults) == set(MALFORMED_KINDS)
    assert set(records.image_faults) == set(IMAGE_FAULTS)
    assert records.products >= 1000 and records.jobs >= 4
    pagination = {k for c in s.catalogs for k in (c.store_faults.get("pagination") or {})}
    assert pagination == {"short_pages", "repeat_products", "total_offset", "cycle_at_page", "endless"}
    assert any(not c.record_faults and not c.store_faults for c in s.catalogs)  # clean stores beside them


def test_every_store_body_is_one_the_fake_provider_accepts() -> None:
    for request in store_requests(get_scenario("messy-catalog")):
        ProviderStoreRequest.model_validate_json(json.dumps(request.body()))


def test_faults_are_spread_disjoint_and_counted_as_asked() -> None:
    c = CatalogClass(
        size_class="m",
        jobs=1,
        products=1200,
        images_per_product=1,
        record_faults={"nul_title": 3, "price_nan": 2},
        image_faults={"ipv6_url": 3},
    )
    body = c.fault_body()
    records, images = body["bad_records"], body["bad_images"]
    assert {k: len(v) for k, v in records.items()} == {"nul_title": 3, "price_nan": 2}
    assert len(images["ipv6_url"]) == 3
    every = [i for v in [*records.values(), *images.values()] for i in v]
    assert len(set(every)) == len(every) == 8 and all(0 <= i < 1200 for i in every)
    assert max(every) - min(every) > 900  # through the whole catalog, not one page
    assert CatalogClass(size_class="c", jobs=1, products=10).fault_body() == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"record_faults": {"nul_titel": 1}}, "unknown fault kinds"),
        ({"image_faults": {"ipv6_url": 1}, "images_per_product": 0}, "images_per_product"),
        ({"record_faults": {"nul_title": 11}}, "faulty products"),
        ({"record_faults": {"nul_title": 1}, "store_faults": {"bad_records": {}}}, "record_faults/image_faults"),
    ],
)
def test_impossible_fault_specs_are_refused(change: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {"size_class": "m", "jobs": 1, "products": 10, "images_per_product": 1} | change
    with pytest.raises(ValueError, match=message):
        CatalogClass.model_validate(data)
