"""A deterministic, misbehaving-on-demand commerce provider for tests and drills.

Run it with ``python -m lab.fake_provider --host 127.0.0.1 --port N``; drive it through its
``/admin`` endpoints. Catalogs are computed from a seed, so what an import must produce is
known exactly (``GET /admin/stores/{id}/expected``).
"""

from lab.fake_provider.app import create_app
from lab.fake_provider.state import ProviderConfig

__all__ = ["ProviderConfig", "create_app"]
