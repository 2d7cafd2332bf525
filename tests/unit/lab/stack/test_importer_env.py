"""The importer's environment: the contract's variables, the caller's IMPORTER_* left out, overrides last."""

from __future__ import annotations

import pytest
import typer

from lab.commands.stack import parse_env
from lab.stack.importer import ImporterEndpoints, grace_seconds, importer_environment

ENDPOINTS = ImporterEndpoints(
    database_url="postgresql://importer:pw@127.0.0.1:20001/importer",
    redis_url="redis://127.0.0.1:20002/0",
    s3_endpoint="http://127.0.0.1:20003",
    s3_bucket="product-images",
    provider_url="http://127.0.0.1:20004",
    operator_token="op-token",
)


def test_contract_variables_are_set() -> None:
    env = importer_environment(ENDPOINTS, base={"PATH": "/usr/bin"})
    assert env["PATH"] == "/usr/bin"
    assert env["IMPORTER_DATABASE_URL"] == ENDPOINTS.database_url
    assert env["IMPORTER_REDIS_URL"] == ENDPOINTS.redis_url
    assert env["IMPORTER_S3_ENDPOINT_URL"] == ENDPOINTS.s3_endpoint
    assert env["IMPORTER_S3_BUCKET"] == "product-images"
    assert env["IMPORTER_OPERATOR_TOKEN"] == "op-token"
    assert env["IMPORTER_ROASTIFY_BASE_URL"] == "http://127.0.0.1:20004/roastify"
    assert env["IMPORTER_SHOPIFY_BASE_URL"] == "http://127.0.0.1:20004/shopify"
    assert env["IMPORTER_IMAGE_ALLOWED_HOSTS"] == "127.0.0.1"
    assert env["IMPORTER_EGRESS_ALLOWED_PRIVATE"] == "127.0.0.1:20004"  # the fake provider/CDN, explicitly
    assert env["IMPORTER_ENVIRONMENT"] == "drill"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert "IMPORTER_REDIS_SENTINELS" not in env


def test_inherited_importer_settings_are_dropped_and_overrides_win() -> None:
    base = {"IMPORTER_LEASE_SECONDS": "999", "IMPORTER_DATABASE_URL": "postgresql://elsewhere", "HOME": "/root"}
    env = importer_environment(ENDPOINTS, {"IMPORTER_LEASE_SECONDS": "5"}, base=base)
    assert env["IMPORTER_LEASE_SECONDS"] == "5"
    assert env["IMPORTER_DATABASE_URL"] == ENDPOINTS.database_url
    assert env["HOME"] == "/root"
    assert importer_environment(ENDPOINTS, base=base).get("IMPORTER_LEASE_SECONDS") is None


def test_sentinel_endpoints_replace_the_redis_url() -> None:
    endpoints = ImporterEndpoints(
        database_url="postgresql://x",
        s3_endpoint="http://s3",
        s3_bucket="b",
        provider_url="http://p",
        operator_token="t",
        redis_sentinels=("127.0.0.1:26001", "127.0.0.1:26002"),
        redis_sentinel_master="primary",
    )
    env = importer_environment(endpoints, base={})
    assert env["IMPORTER_REDIS_SENTINELS"] == "127.0.0.1:26001,127.0.0.1:26002"
    assert env["IMPORTER_REDIS_SENTINEL_MASTER"] == "primary"
    assert "IMPORTER_REDIS_URL" not in env


def test_redis_is_required() -> None:
    endpoints = ImporterEndpoints(
        database_url="postgresql://x",
        s3_endpoint="http://s3",
        s3_bucket="b",
        provider_url="http://p",
        operator_token="t",
    )
    with pytest.raises(ValueError, match="redis"):
        importer_environment(endpoints, base={})


def test_grace_seconds_follows_the_override() -> None:
    assert grace_seconds({"IMPORTER_SHUTDOWN_GRACE_SECONDS": "5"}) == 5.0
    assert grace_seconds({}) == 30.0
    assert grace_seconds({"IMPORTER_SHUTDOWN_GRACE_SECONDS": "soon"}) == 30.0


def test_cli_env_pairs() -> None:
    assert parse_env(["IMPORTER_LEASE_SECONDS=5", "IMPORTER_X=a=b", "EMPTY="]) == {
        "IMPORTER_LEASE_SECONDS": "5",
        "IMPORTER_X": "a=b",
        "EMPTY": "",
    }
    for bad in ["NOVALUE", "=5", "BAD KEY=1", "A-B=1"]:
        with pytest.raises(typer.BadParameter):
            parse_env([bad])
