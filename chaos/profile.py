"""The compressed-time settings every chaos drill runs the importer with.

Production intervals (30 s leases, 5-minute orphan sweeps, 60 s breakers, 5-minute brakes)
would make one experiment last most of an hour; the importer reads every interval from an
``IMPORTER_*`` setting, so drills shrink them here, once, for every experiment. One profile for
all experiments (rather than one per experiment) is what lets a suite share one stack: the
API and the reconciler run with these values the whole time.

Two choices are not mere compression and are reported with the results:

- the retry budget (``JOB_MAX_TRIES`` x ``RETRY_BACKOFF_*``) is sized so a job waits out the
  longest default Postgres partition (60 s): with base 1 s and cap 30 s, ten tries back off
  for at least ~75 s in total. A smaller budget would fail jobs during long partitions, which
  the db-partition experiment would report as a lower "maximum downtime tolerated";
- the overload threshold is tiny (40 waiting jobs) so a few seconds of submissions reach it;
  the other experiments' loads stay far below it.
"""

from __future__ import annotations

from collections.abc import Mapping

SENTINEL_DOWN_AFTER_MS = 2000
SENTINEL_FAILOVER_TIMEOUT_MS = 10000
BASE_WORKERS = 2  # the stack's own workers; experiments add and kill their own on top

CHAOS_ENV: dict[str, str] = {
    # leases and workers
    "IMPORTER_LEASE_SECONDS": "3",
    "IMPORTER_WORKER_POLL_DELAY": "0.2",
    "IMPORTER_WORKER_HEARTBEAT_INTERVAL": "1",
    "IMPORTER_SHUTDOWN_GRACE_SECONDS": "5",
    "IMPORTER_DB_POOL_MIN": "1",
    "IMPORTER_DB_POOL_MAX": "6",
    # reconciler
    "IMPORTER_ORPHAN_SWEEP_INTERVAL": "2",
    "IMPORTER_ORPHAN_MIN_AGE": "4",
    "IMPORTER_STALL_SWEEP_INTERVAL": "30",
    "IMPORTER_STALL_LIMIT": "900",
    # Redis reconnects (a failover is over in seconds; do not back off past it)
    "IMPORTER_REDIS_SOCKET_TIMEOUT": "2",
    "IMPORTER_REDIS_RECONNECT_BACKOFF_MAX": "1",
    # retries: see the module docstring
    "IMPORTER_JOB_MAX_TRIES": "10",
    "IMPORTER_RETRY_BACKOFF_BASE": "1",
    "IMPORTER_RETRY_BACKOFF_MAX": "30",
    # breakers
    "IMPORTER_BREAKER_OPEN_SECONDS": "3",
    "IMPORTER_BREAKER_HALF_OPEN_RECHECK": "1",
    "IMPORTER_BREAKER_PROBE_TIMEOUT": "10",
    "IMPORTER_DEFERRAL_JITTER": "0.5",
    # health, backpressure, brake
    "IMPORTER_HEALTH_CACHE_SECONDS": "1",
    "IMPORTER_HEALTH_DEGRADED_WAITING": "20",
    "IMPORTER_HEALTH_CRITICAL_WAITING": "30",
    "IMPORTER_HEALTH_OVERLOAD_WAITING": "40",
    "IMPORTER_OVERLOAD_RETRY_AFTER": "5",
    "IMPORTER_BRAKE_RESUME_AFTER": "8",
    "IMPORTER_BRAKE_COOLDOWN": "30",
    # job starts: the queue-level limit is not what these drills exercise
    "IMPORTER_QUEUE_START_LIMIT_PER_MIN": "1000",
}

# The importer's own defaults for what experiments read (restated, not imported: the proving
# ground judges the importer from outside and must not share its code).
IMPORTER_DEFAULTS: dict[str, float] = {
    "lease_seconds": 30.0,
    "shutdown_grace_seconds": 30.0,
    "orphan_sweep_interval": 300.0,
    "orphan_min_age": 60.0,
    "job_max_tries": 10.0,
    "retry_backoff_base": 5.0,
    "retry_backoff_max": 300.0,
    "breaker_open_seconds": 60.0,
    "health_overload_waiting": 10000.0,
    "brake_resume_after": 300.0,
    "overload_retry_after": 60.0,
    "db_command_timeout": 30.0,
    "health_cache_seconds": 10.0,
}


def mismatches(env: Mapping[str, str]) -> dict[str, tuple[str | None, str]]:
    """Settings of an attached stack that differ from the profile: ``name -> (has, wants)``."""
    return {k: (env.get(k), v) for k, v in CHAOS_ENV.items() if env.get(k) != v}


def up_command(run_dir: str = ".drill") -> str:
    """The ``drill up`` line that starts a stack this profile's experiments can attach to."""
    envs = " ".join(f"--env {k}={v}" for k, v in CHAOS_ENV.items())
    return (
        f"drill up --topology ha --run-dir {run_dir} --workers {BASE_WORKERS} "
        f"--sentinel-down-after-ms {SENTINEL_DOWN_AFTER_MS} "
        f"--sentinel-failover-timeout-ms {SENTINEL_FAILOVER_TIMEOUT_MS} {envs}"
    )
