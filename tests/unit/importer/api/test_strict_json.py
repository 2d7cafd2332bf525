"""Request JSON with a repeated key is refused, at any depth."""

from __future__ import annotations

import json

import pytest

from importer.api.strict_json import DUPLICATE_KEY_PREFIX, loads_strict


@pytest.mark.parametrize("raw", [b'{"a": 1, "a": 2}', b'{"x": {"b": 1, "b": 1}}', b'[{"k": 1}, {"k": 2, "k": 3}]'])
def test_repeated_keys_are_refused(raw: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        loads_strict(raw)
    assert caught.value.msg.startswith(DUPLICATE_KEY_PREFIX)


def test_distinct_keys_parse_as_usual() -> None:
    assert loads_strict(b'{"a": 1, "b": {"a": 2}}') == {"a": 1, "b": {"a": 2}}
