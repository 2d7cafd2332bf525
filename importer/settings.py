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

    # --- hardening: stalls and the reconciler ---------------------------------------------------------
    # A sweep pages through every candidate (reconcile_batch_limit rows a page, each page in its
    # own short transaction) until none is left or one of these bounds is hit; the next sweep
    # starts again from the oldest, so a bounded sweep only delays, never loses, a row.
    # 100 pages of 1,000: far beyond any backlog seen, small enough that a sweep cannot hold the
    # reconciler (and its health ticks) for long.
    reconcile_max_rows_per_sweep: int = Field(100_000, ge=1)
    # Well under ORPHAN_SWEEP_INTERVAL (300 s), so sweeps never pile up behind each other.
    reconcile_max_sweep_seconds: float = Field(120.0, gt=0)
    # Bound on one database heartbeat of a running job (the lease keeper writes it every
    # lease/3, beside the Redis renewal but in its own task): a slow Postgres delays only the
    # heartbeat, never the Redis lease, and a hung call is abandoned and tried again next time.
    job_heartbeat_timeout: float = Field(10.0, gt=0)

    # --- hardening: per-record isolation (bad records rejected, never failing the job) ------------
    # Longest product title (and other short text) accepted; the seed's parsers allowed 1,000.
    product_text_max_chars: int = Field(1_000, ge=1, le=1_000_000)
    # Longest external product id: ids are keys, 200 is far above any provider's real ids.
    product_id_max_chars: int = Field(200, ge=1, le=10_000)
    # Longest description: real HTML descriptions run to tens of KB; 100,000 chars bounds a
    # page of 250 products to tens of MB of text at worst.
    product_description_max_chars: int = Field(100_000, ge=1, le=10_000_000)
    # Most images one product may list (Shopify's own limit per product is 250); more rejects
    # the product (too_many_images) instead of letting one record queue unbounded downloads.
    product_max_images: int = Field(250, ge=0, le=10_000)
    # Longest image URL stored (browsers and CDNs stop around 2,000-8,000).
    product_image_url_max_chars: int = Field(2_000, ge=16, le=65_536)
    # Highest price accepted, in cents: $1 billion, far above any product and far below the
    # bigint column's limit, so an absurd value is rejected instead of stored.
    price_max_cents: int = Field(100_000_000_000, ge=1, le=2**63 - 1)
    # Rejected records kept with their reason per job; the counts on the job include every one.
    rejection_detail_limit: int = Field(1_000, ge=0, le=1_000_000)
    # Transient failures (timeouts, 5xx, connection errors) one image may have before it is
    # rejected as image_unreachable; one dead image host must not hold a job forever.
    image_max_attempts: int = Field(3, ge=1, le=100)
    # Pause between passes over images whose host failed transiently: a blip gets time to
    # clear, and the job's wait stays bounded (attempts x this, plus the downloads' own timeouts).
    image_retry_delay: float = Field(5.0, ge=0, le=600)
    # Pages fetched beyond the provider's declared total before the job stops (a provider whose
    # total grows as we page is running away); a few pages absorb honest catalog growth.
    catalog_pages_slack: int = Field(10, ge=0, le=100_000)
    # Records one catalog page may list (providers serve at most 250 a page); a page listing more
    # is refused whole, before its records are parsed one by one on the worker's event loop.
    provider_page_max_records: int = Field(1_000, ge=1)
    # Consecutive pages that list only products already seen before the job stops paging: the
    # runaway stop for providers that declare no total (Shopify's Link-header pagination). An
    # honest catalog edited while we page repeats a few products, never whole pages in a row.
    catalog_stale_pages_limit: int = Field(5, ge=1, le=100_000)

    # --- hardening: fairness between tenants ---------------------------------------------------------
    # (section owned by the fairness work)
    # Active + waiting jobs (PENDING + IN_PROGRESS rows) one company may have, per tier; over it
    # POST /v1/imports answers 429. Sized from the queue-wide start limit (100 starts/min):
    # BASIC about a minute of the whole fleet's starts, PRO five minutes, ENTERPRISE twenty.
    # All stay below the critical waiting threshold (5,000), far below overload (10,000), so
    # no tenant alone can take the queue to overload by count.
    company_limit_basic: int = Field(100, ge=1)
    company_limit_pro: int = Field(500, ge=1)
    company_limit_enterprise: int = Field(2_000, ge=1)
    # Retry-After of a 429 "company_limit": about the time a small job takes to leave the queue.
    company_limit_retry_after: int = Field(30, ge=1)
    # A company holding at least this share of all waiting jobs is "the cause" of a critical or
    # overloaded queue: it is shed (429 tenant_shed) and, at overload, braked alone. 0.5 means
    # at most one tenant can be the cause at a time (two at exactly half are both shed).
    tenant_shed_share: float = Field(0.5, gt=0.0, le=1.0)
    # How many companies the health report lists by waiting jobs (the GROUP BY is LIMITed to it).
    # Must reach 1 / tenant_shed_share so a company over the share is always in the list.
    health_top_tenants: int = Field(10, ge=1, le=1_000)
    # Fair scheduler: companies with due jobs looked at per worker poll (least recently started
    # first); bounds the poll's Redis work when thousands of companies have jobs queued.
    fair_scan_tenants: int = Field(50, ge=1, le=10_000)

    @model_validator(mode="after")
    def _top_tenants_cover_the_shed_share(self) -> Settings:
        # A company over the share must be in the top list, or it could never be found and shed.
        if self.health_top_tenants * self.tenant_shed_share < 1.0:
            raise ValueError(
                f"health_top_tenants ({self.health_top_tenants}) must be at least 1 / tenant_shed_share "
                f"({self.tenant_shed_share})"
            )
        return self

    # --- hardening: intake safety and idempotency ----------------------------------------------------
    # (section owned by the intake work)
    # Largest request body the API reads, in bytes; larger ones are answered 413 before anything
    # is parsed. The biggest legitimate body (an import request) is well under 1 KiB; 64 KiB
    # leaves room for future fields and caps what one request can make the API hold.
    api_max_body_bytes: int = Field(64 * 1024, ge=1024)
    # How long an unknown API key is remembered as unknown per API process, so a client hammering
    # with a wrong key costs no Postgres round trip. Keys are random 256-bit tokens: a key cannot
    # be created after being tried, so remembering "unknown" for a few seconds loses nothing.
    api_key_negative_cache_seconds: float = Field(10.0, ge=0)
    # Failed authentications allowed per client address per minute (per API process, in memory);
    # beyond it every request from that address is answered 429 with Retry-After until the
    # moving window has room again. A well-behaved client fails once and stops.
    auth_failure_limit_per_min: int = Field(30, ge=1)
    # Open event streams (SSE) one company may hold across all API processes; one more is 429.
    # Each stream costs an API task and a Postgres read per poll interval; the load scenarios
    # follow one stream per job, so 100 covers a busy tenant with room to spare.
    sse_max_streams_per_company: int = Field(100, ge=1)
    # An open stream refreshes its slot in Redis at least this often; a slot not refreshed for
    # three times this long (its API process died) stops counting.
    sse_slot_refresh_seconds: float = Field(20.0, gt=0)

    # --- hardening: egress safety (images and provider pages) ----------------------------------------
    # Destinations allowed although they are not public (loopback, private...), as host:port pairs
    # matched against the URL's host as written. Empty in production: nothing internal is reachable.
    # The local stack lists its fake provider/CDN here.
    egress_allowed_private: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # http and https only: other schemes (file, ftp, gopher...) are never a catalog's business.
    egress_allowed_schemes: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["http", "https"])
    # Web ports only: a URL on another port is how a catalog would reach an internal service.
    egress_allowed_ports: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [80, 443])
    # DNS answers in milliseconds; a resolver that hangs must not hold a request (or its job).
    egress_resolve_timeout: float = Field(5.0, gt=0)
    # A real catalog page of 250 products is well under 1 MiB; 20 MiB decoded is not a page.
    provider_page_max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    # Total time for one page request, connect to last byte (provider_timeout is per read): twice
    # the per-read timeout, so a page that trickles bytes is cut instead of holding its job slot.
    provider_request_deadline: float = Field(60.0, gt=0)
    # The same for one image download (image_timeout is per read).
    image_request_deadline: float = Field(60.0, gt=0)

    @field_validator("egress_allowed_private", "egress_allowed_schemes", "egress_allowed_ports", mode="before")
    @classmethod
    def _egress_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("egress_allowed_private")
    @classmethod
    def _egress_host_ports(cls, value: list[str]) -> list[str]:
        # A typo here would silently block the stack's provider: refuse it at startup instead.
        from importer.egress.hostport import parse_host_port  # here: keeps this section self-contained

        for entry in value:
            parse_host_port(entry)
        return value

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
