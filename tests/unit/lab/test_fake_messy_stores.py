"""Messy stores: per-kind lists and shares resolve to one deterministic, disjoint fault plan."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from lab.fake_provider.catalog import StoreSpec, expected_counts, expected_product
from lab.fake_provider.stores import StoreRegistry, StoreRequest

BASE = "http://127.0.0.1:9999"


def _spec(**kw: object) -> StoreSpec:
    return StoreRegistry().create(StoreRequest.model_validate({"dialect": "roastify", "products": 2000, **kw}))


def test_shares_pick_a_deterministic_disjoint_set_of_products() -> None:
    kw = {
        "seed": 9,
        "record_shares": {"nul_title": 0.05, "price_nan": 0.05},
        "image_shares": {"dead_host": 0.02, "ipv6_url": 0.03},
        "bad_records": {"long_title": [0, 1]},
    }
    a, b = _spec(**kw), _spec(**kw)
    assert a.bad_records == b.bad_records and a.dead_host == b.dead_host  # same spec, same catalog
    kinds = Counter(a.bad_records.values())
    assert kinds["long_title"] == 2 and a.bad_records[0] == "long_title"
    assert 60 <= kinds["nul_title"] <= 140 and 60 <= kinds["price_nan"] <= 140  # ~5% of 2,000
    assert a.dead_host.isdisjoint(a.ipv6_url) and 20 <= len(a.dead_host) <= 60
    counts = expected_counts(a)
    assert counts["rejections"]["text_not_storable"] == kinds["nul_title"]
    assert counts["rejections"]["image_unreachable"] == len(a.dead_host - set(a.bad_records))
    docs = [expected_product(a, i, BASE) for i in range(a.products)]
    assert sum(d["expect"] == "rejected" for d in docs) == len(a.bad_records)


@pytest.mark.parametrize(
    "bad",
    [
        {"record_shares": {"nul_title": 0.7, "price_nan": 0.4}},
        {"record_shares": {"nul_title": -0.1}},
        {"record_shares": {"lava": 0.1}},
        {"image_shares": {"dead_host": 0.1}, "images_per_product": 0},
    ],
)
def test_bad_shares_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        StoreRequest.model_validate({"dialect": "roastify", "products": 10, **bad})
