"""Why an outgoing request was refused before any byte was sent (stdlib only: errors.py imports it)."""

from __future__ import annotations

import enum


class Refusal(enum.StrEnum):
    """One value per rule of the egress policy; image rejections map each to a RejectionCode."""

    URL_INVALID = "url_invalid"
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    HOST_NOT_ALLOWED = "host_not_allowed"
    PORT_NOT_ALLOWED = "port_not_allowed"
    ADDRESS_NOT_PUBLIC = "address_not_public"
