"""Egress safety: where the importer's HTTP clients may connect, and how much they may read.

URLs in a catalog come from a third party, and provider base URLs from configuration; neither
may make a worker connect to an internal service. The pieces, one job each:

* ``refusal``   why a destination was refused (an enum, mapped to rejection codes by callers)
* ``addresses`` which IP addresses count as public
* ``hostport``  the explicit ``host:port`` exceptions, parsed from settings
* ``policy``    the URL and destination rules (schemes, ports, addresses, exceptions)
* ``backend``   an httpcore network backend that resolves, checks, then connects to the checked
                address (no DNS rebinding window)
* ``client``    the httpx clients built on that backend
* ``body``      reading a response body under a cap counted after decompression

This module imports nothing on purpose: ``importer.errors`` imports ``refusal`` from here.
"""
