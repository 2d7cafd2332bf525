#!/usr/bin/env bash
# The project's test command (the README's and CI's): set up, lint, type-check, test.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -k stack -x     extra arguments go to pytest
#
# Nothing needs to be running beforehand: the tests start the services they use (real
# Postgres, Redis, moto, the fake provider, the importer) through lab.stack, on free
# loopback ports, and stop them at the end.
set -Eeuo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

step() {
    local name="$1"
    shift
    printf '\n[test] === %s: %s\n' "$name" "$*"
    local started=$SECONDS
    if ! "$@"; then
        printf '[test] FAILED: %s (after %ss)\n' "$name" "$((SECONDS - started))" >&2
        exit 1
    fi
    printf '[test] ok: %s (%ss)\n' "$name" "$((SECONDS - started))"
}

step setup scripts/setup.sh
export PATH="$ROOT/.venv/bin:$PATH"
step "ruff check" ruff check .
step "ruff format" ruff format --check .
step mypy mypy
step pytest pytest "$@"
printf '\n[test] all steps passed in %ss\n' "$SECONDS"
