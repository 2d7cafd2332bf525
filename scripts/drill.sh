#!/usr/bin/env bash
# The project's main job (the README's first command): set up this machine, then run `drill`.
#
#   scripts/drill.sh run smoke        a short drill on the local stack, ending in a report
#   scripts/drill.sh --help           every drill command
#
# Arguments go to `drill` unchanged; set-up (scripts/setup.sh) is idempotent and quick when done.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh >&2
exec .venv/bin/drill "$@"
