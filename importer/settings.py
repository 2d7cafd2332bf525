"""Every knob of the importer, read from the environment (prefix ``IMPORTER_``).

Defaults are the production values of the seed checklist; drills and tests shrink the
intervals through these same variables (never through test-only code paths), which is what
lets a full chaos drill fit in minutes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMPORTER_", extra="ignore", frozen=True)

    # --- identity -------------------------------------------------------------------------
    environment: str = "production"
    log_level: str = "INFO"

    # --- PostgreSQL -----------------------------------------------------------------------
    database_url: str = "postgresql://importer@127.0.0.1:5432/importer"
    db_pool_min: int = Field(10, ge=1)
    db_pool_max: int = Field(20, ge=1)
    db_connect_timeout: float = Field(10.0, gt=0)
    db_command_timeout: float = Field(30.0, gt=0)

    # --- Redis (plain URL, or Sentinel when ``redis_sentinels`` is set) -------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = "mymaster"
    redis_socket_timeout: float = Field(5.0, gt=0)
    redis_reconnect_backoff_max: float = Field(30.0, gt=0)
    queue_name: str = "arq:queue"

    # --- S3 ---------------------------------------------------------------------------------
    s3_endpoint_url: str | None = None
    s3_bucket: str = "product-images"
    s3_region: str = "us-east-1"

    # --- API ----------------------------------------------------------------------------------
    operator_token: SecretStr = SecretStr("")
    api_processes: int = Field(1, ge=1, le=64)
    api_key_cache_seconds: float = Field(30.0, ge=0)
    sse_poll_interval: float = Field(5.0, gt=0)
    sse_max_duration: float = Field(3600.0, gt=0)

    # --- worker ---------------------------------------------------------------------------------
    worker_concurrency: int = Field(5, ge=1)
    worker_poll_delay: float = Field(0.5, gt=0)
    job_timeout: float = Field(7200.0, gt=0)
    job_max_tries: int = Field(10, ge=1)
    lease_seconds: float = Field(30.0, gt=0)
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    retry_backoff_base: float = Field(5.0, gt=0)
    retry_backoff_max: float = Field(300.0, gt=0)
    worker_heartbeat_interval: float = Field(10.0, gt=0)
    startup_timeout: float = Field(120.0, gt=0)
    image_batch_size: int = Field(100, ge=1)
    max_catalog_pages: int = Field(100_000, ge=1)

    # --- reconciler -----------------------------------------------------------------------------
    orphan_sweep_interval: float = Field(300.0, gt=0)
    orphan_min_age: float = Field(60.0, ge=0)
    stall_sweep_interval: float = Field(600.0, gt=0)
    stall_limit: float = Field(7200.0, gt=0)
    reconcile_batch_limit: int = Field(1000, ge=1)

    # --- providers ------------------------------------------------------------------------------
    roastify_base_url: str = "https://api.roastify.example"
    shopify_base_url: str = "https://shopify.example"
    provider_page_size: int = Field(100, ge=1, le=250)
    provider_timeout: float = Field(30.0, gt=0)
    provider_max_inline_wait: float = Field(10.0, ge=0)

    # --- protection: rate limits (shared by all workers through Redis) ---------------------------
    roastify_rate_limit_per_min: int = Field(100, ge=1)
    shopify_rate_limit_per_min: int = Field(120, ge=1)
    company_rate_limit_per_min: int = Field(600, ge=1)
    # The providers count a 60 s moving window from when a request *arrives*; we count from
    # just before we send it, so our window is longer by a skew (N per 61 s by default).
    rate_limit_window_seconds: int = Field(60, ge=1)
    rate_limit_window_skew: int = Field(1, ge=0)
    rate_limit_max_wait: float = Field(5.0, ge=0)
    queue_start_limit_per_min: int = Field(100, ge=1)
    deferral_jitter: float = Field(2.0, ge=0)

    # --- protection: circuit breakers (one per provider, shared through Redis) -------------------
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_open_seconds: float = Field(60.0, gt=0)
    breaker_probe_timeout: float = Field(45.0, gt=0)
    breaker_half_open_recheck: float = Field(5.0, gt=0)
    breaker_history_size: int = Field(100, ge=1)

    # --- protection: queue health, backpressure and the emergency brake --------------------------
    health_cache_seconds: float = Field(10.0, gt=0)
    health_degraded_waiting: int = Field(1_000, ge=1)
    health_critical_waiting: int = Field(5_000, ge=1)
    health_overload_waiting: int = Field(10_000, ge=1)
    health_degraded_age: float = Field(300.0, gt=0)
    health_critical_age: float = Field(900.0, gt=0)
    health_overload_age: float = Field(1800.0, gt=0)
    health_age_scan_limit: int = Field(1_000, ge=1)
    basic_defer_seconds: float = Field(300.0, ge=0)
    overload_retry_after: int = Field(60, ge=1)
    # Retry-After of a 503 answered because Postgres or Redis did not answer the API.
    unavailable_retry_after: int = Field(5, ge=1)
    brake_resume_after: float = Field(300.0, gt=0)
    brake_cooldown: float = Field(300.0, ge=0)

    # --- images ---------------------------------------------------------------------------------
    image_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["images.roastify.example", "cdn.shopify.com"]
    )
    image_max_bytes: int = Field(10 * 1024 * 1024, ge=1)
    image_max_pixels: int = Field(40_000_000, ge=1)
    image_concurrency: int = Field(8, ge=1)
    image_timeout: float = Field(30.0, gt=0)
    thumbnail_size: int = Field(256, ge=16)

    # --- pipeline ---------------------------------------------------------------------------------
    product_batch_size: int = Field(500, ge=1)
    events_channel_prefix: str = "importer:events:"

    @model_validator(mode="after")
    def _health_thresholds_ordered(self) -> Settings:
        # A misordered set would make a level unreachable; refuse it at startup instead.
        for kind, values in (
            ("waiting", (self.health_degraded_waiting, self.health_critical_waiting, self.health_overload_waiting)),
            ("age", (self.health_degraded_age, self.health_critical_age, self.health_overload_age)),
        ):
            if not values[0] <= values[1] <= values[2]:
                raise ValueError(f"health {kind} thresholds must be degraded <= critical <= overload, got {values}")
        return self

    @field_validator("redis_sentinels", "image_allowed_hosts", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def health_stale_after(self) -> float:
        """A published health report older than this is recomputed by whoever needs it."""
        return self.health_cache_seconds * 2

    @property
    def lease_renew_interval(self) -> float:
        """Renew three times per lease so one slow renewal never loses it."""
        return self.lease_seconds / 3


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
