"""The one mutable object of a running provider, shared by the admin and serving routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from lab.fake_provider.faults import FaultBook
from lab.fake_provider.images import JpegCache
from lab.fake_provider.ratelimit import StoreRateLimiter
from lab.fake_provider.stats import DEFAULT_LOG_SIZE, Stats
from lab.fake_provider.stores import StoreRegistry


@dataclass
class ProviderConfig:
    public_url: str | None = None  # fixes absolute URLs, e.g. when clients reach us through a proxy
    image_cache_entries: int = 4096
    request_log_size: int = DEFAULT_LOG_SIZE


@dataclass
class ProviderState:
    config: ProviderConfig
    stores: StoreRegistry = field(default_factory=StoreRegistry)
    faults: FaultBook = field(default_factory=FaultBook)
    limiter: StoreRateLimiter = field(default_factory=StoreRateLimiter)
    stats: Stats = field(init=False)
    images: JpegCache = field(init=False)

    def __post_init__(self) -> None:
        self.stats = Stats(self.config.request_log_size)
        self.images = JpegCache(self.config.image_cache_entries)

    def base_url(self, request: Request) -> str:
        """Absolute URLs point back at whatever address the client used to reach us."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")


def state_of(request: Request) -> ProviderState:
    state = request.app.state.provider
    assert isinstance(state, ProviderState)
    return state
