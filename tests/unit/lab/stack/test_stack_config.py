"""Stack configuration is checked up front, and a stack that never started stops as a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.stack.errors import StackError
from lab.stack.stack import Stack, StackConfig


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="workers"):
        StackConfig(workers=-1)
    with pytest.raises(ValueError, match="variable names"):
        StackConfig(env_overrides={"A=B": "1"})


def test_unstarted_stack_stops_as_a_no_op_and_names_what_is_missing(tmp_path: Path) -> None:
    stack = Stack(StackConfig(run_dir=tmp_path / "never"))
    assert stack.stop() == {}
    assert not (tmp_path / "never").exists()
    with pytest.raises(StackError, match="api is not part of this stack"):
        _ = stack.api_url
    assert stack.info.operator_token == stack.operator_token and len(stack.operator_token) >= 32
