#!/usr/bin/env bash
# Prepare this machine to run the importer, the proving ground and the tests.
#
# Idempotent: every step checks first and does nothing when already done, so running it
# before every test run costs a few seconds. Meant for root on Debian 12 (CI, a dev VM);
# as another user it uses sudo for the apt step, when sudo exists.
#
#   1. Debian packages: postgresql, redis-server, redis-sentinel, jq, python3.11-venv (only missing ones)
#   2. no Debian-managed postgres/redis left running (the stack runs its own, on free ports)
#   3. .venv with python3.11: every dependency from the lock file requirements/dev.txt (hash-checked),
#      then the project itself, editable, with --no-deps (skipped while the stamp matches);
#      scripts/lock.sh regenerates the lock after a change to pyproject.toml
#   4. Toxiproxy built with `go install` at a pinned version, as /usr/local/bin/toxiproxy-server
set -Eeuo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.setup-stamp"
TOXIPROXY_MODULE="github.com/Shopify/toxiproxy/v2/cmd/server"
TOXIPROXY_VERSION="v2.12.0"
TOXIPROXY_BIN="/usr/local/bin/toxiproxy-server"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "command failed (exit $?) at scripts/setup.sh:$LINENO: $BASH_COMMAND"' ERR

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "root needed for: $* (run scripts/setup.sh as root, or install sudo)"
    fi
}

# --- 1. Debian packages --------------------------------------------------------------------

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1
}

python_ok() {
    command -v python3.11 >/dev/null 2>&1 && python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1
}

install_packages() {
    local packages=("$@")
    local policy=/usr/sbin/policy-rc.d created_policy=0
    # Debian starts a package's service on install; we do not want a system postgres/redis.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 0755 "$policy"
        created_policy=1
    fi
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    log "apt-get install -y ${packages[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"; then
        [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"
        die "apt-get install ${packages[*]} failed"
    fi
    if [ "$created_policy" -eq 1 ]; then
        as_root rm -f "$policy"
    fi
}

missing=()
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v jq >/dev/null 2>&1 || missing+=(jq)  # the README's examples read stack.json with it
python_ok || missing+=(python3.11 python3.11-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    install_packages "${missing[@]}"
else
    log "Debian packages present (postgresql, redis-server, redis-sentinel, jq, python3.11-venv)"
fi
have_postgres || die "PostgreSQL still missing after apt-get install postgresql"
command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after apt-get install"
command -v redis-sentinel >/dev/null 2>&1 || die "redis-sentinel still missing after apt-get install"
python_ok || die "python3.11 with venv/ensurepip still missing after apt-get install python3.11-venv"

# --- 2. no system services -----------------------------------------------------------------
# The stack starts its own servers on free ports and never uses the system ones; a system
# instance left running by a package install would only take memory and the default ports.

if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r version cluster _port status _rest; do
        if [ "$status" = "online" ]; then
            log "stopping the system PostgreSQL cluster $version/$cluster (not used by the stack)"
            as_root pg_ctlcluster "$version" "$cluster" stop || die "could not stop PostgreSQL cluster $version/$cluster"
        fi
    done < <(pg_lsclusters --no-header 2>/dev/null || true)
fi
for pidfile in /run/redis/redis-server.pid /run/sentinel/redis-sentinel.pid; do
    if [ -s "$pidfile" ]; then
        pid="$(cat "$pidfile")"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            log "stopping the system $(basename "$pidfile" .pid) (pid $pid, not used by the stack)"
            as_root kill -TERM "$pid"
        fi
    fi
done

# --- 3. the virtualenv -----------------------------------------------------------------------

LOCK="requirements/dev.txt"
[ -f "$LOCK" ] || die "$LOCK missing (scripts/lock.sh writes it)"

# What the installed environment depends on: the lock, the dependency list, the interpreter, and
# the set of top-level packages (an editable install maps only the packages it saw at install time).
stamp_of() {
    {
        sha256sum pyproject.toml "$LOCK"
        python3.11 -c 'import sys; print(sys.version)'
        for init in */__init__.py; do printf '%s\n' "$init"; done
    } | sha256sum | cut -d' ' -f1
}

wanted="$(stamp_of)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] \
    && "$VENV/bin/python" -c 'import importer, lab' >/dev/null 2>&1; then
    log ".venv up to date"
else
    if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' >/dev/null 2>&1; then
        log "removing a .venv that has no working Python 3.11"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating .venv with $(command -v python3.11)"
        python3.11 -m venv "$VENV"
    fi
    log "pip install -r $LOCK, then -e . --no-deps (the lock, pyproject.toml or the package set changed)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$LOCK" \
        || die "pip install -r $LOCK failed (after a change to pyproject.toml, run scripts/lock.sh)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps -e . \
        || die "pip install --no-deps -e . failed"
    # What the lock no longer lists goes, so a dependency dropped from pyproject.toml cannot stay
    # importable here and hide a missing one (pip has no "sync"; pip-tools' pip-sync is this loop).
    stale="$("$VENV/bin/python" - "$LOCK" <<'PY'
import re, subprocess, sys
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                        capture_output=True, text=True, check=True).stdout
names = {norm(line.split("==")[0]) for line in frozen.splitlines() if "==" in line}
print(" ".join(sorted(names - locked - {"pip", "setuptools", "wheel"})))
PY
)" || die "could not list the installed packages"
    if [ -n "$stale" ]; then
        log "removing packages the lock no longer lists: $stale"
        # shellcheck disable=SC2086  # one word per package name
        "$VENV/bin/python" -m pip uninstall --disable-pip-version-check -q -y $stale || die "pip uninstall failed"
    fi
    "$VENV/bin/python" -c 'import importer, lab' || die ".venv cannot import importer and lab after install"
    printf '%s\n' "$wanted" >"$STAMP"
fi

# --- 4. Toxiproxy ------------------------------------------------------------------------------

is_toxiproxy() { [ -x "$1" ] && "$1" --version 2>&1 | grep -qi toxiproxy; }

if command -v toxiproxy-server >/dev/null 2>&1 && is_toxiproxy "$(command -v toxiproxy-server)"; then
    log "toxiproxy-server present ($(command -v toxiproxy-server))"
else
    GO="$(command -v go || true)"
    [ -n "$GO" ] || { [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go; } || true
    [ -n "$GO" ] || die "Go not found (neither in PATH nor /usr/local/go/bin/go); it is needed to build Toxiproxy"
    gobin="$("$GO" env GOPATH | cut -d: -f1)/bin"
    if is_toxiproxy "$gobin/server"; then
        log "reusing Toxiproxy already built at $gobin/server"
    else
        log "building Toxiproxy: go install $TOXIPROXY_MODULE@$TOXIPROXY_VERSION"
        "$GO" install "$TOXIPROXY_MODULE@$TOXIPROXY_VERSION" || die "go install of Toxiproxy failed"
    fi
    is_toxiproxy "$gobin/server" || die "$gobin/server is not Toxiproxy after go install"
    log "installing $gobin/server as $TOXIPROXY_BIN"
    as_root install -m 0755 "$gobin/server" "$TOXIPROXY_BIN"
    is_toxiproxy "$TOXIPROXY_BIN" || die "$TOXIPROXY_BIN does not run"
fi

log "done"
