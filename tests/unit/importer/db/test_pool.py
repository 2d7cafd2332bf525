"""A database that refuses work for now (read-only, full, out of memory) is a transient error:
intake answers 503 with Retry-After and the worker retries, instead of a 500 or a FAILED job."""

from __future__ import annotations

import asyncpg
import pytest

from importer.db.pool import is_transient_db_error


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006
        asyncpg.exceptions.DiskFullError,  # 53100
        asyncpg.exceptions.OutOfMemoryError,  # 53200
        asyncpg.exceptions.TooManyConnectionsError,  # 53300
        asyncpg.exceptions.ConfigurationLimitExceededError,  # 53400
        asyncpg.exceptions.AdminShutdownError,  # 57P01
        asyncpg.exceptions.CannotConnectNowError,  # 57P03
        asyncpg.exceptions.PostgresIOError,  # 58030
    ],
)
def test_refusals_are_transient(error: type[Exception]) -> None:
    assert is_transient_db_error(error("refused"))


@pytest.mark.parametrize(
    "error",
    [asyncpg.exceptions.UniqueViolationError, asyncpg.exceptions.UndefinedColumnError, asyncpg.exceptions.DataError],
)
def test_statement_errors_are_not(error: type[Exception]) -> None:
    assert not is_transient_db_error(error("bug"))
