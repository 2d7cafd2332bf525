"""Which class speaks which provider's dialect, built once per process from settings."""

from __future__ import annotations

from importer.models import Provider
from importer.providers.base import CatalogProvider
from importer.providers.fields import RecordLimits
from importer.providers.roastify import RoastifyProvider
from importer.providers.shopify import ShopifyProvider
from importer.providers.transport import ProviderTransport
from importer.settings import Settings


def build_providers(settings: Settings, transport: ProviderTransport) -> dict[Provider, CatalogProvider]:
    limits = RecordLimits.from_settings(settings)
    page_size = settings.provider_page_size
    return {
        Provider.ROASTIFY: RoastifyProvider(
            transport, base_url=settings.roastify_base_url, page_size=page_size, limits=limits
        ),
        Provider.SHOPIFY: ShopifyProvider(
            transport, base_url=settings.shopify_base_url, page_size=page_size, limits=limits
        ),
    }
