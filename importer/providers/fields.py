"""Bounds on every field a provider sends, and the rejection code each violation maps to.

A provider's record is hostile until checked: text must be storable in a Postgres ``text``
column (no NUL, no lone surrogate — JSON's ``"\\ud800"`` escape decodes to one), within a
length; numbers must be finite and within the column's range; image URLs must parse. A check
that fails raises ``PydanticCustomError`` whose *type* is the ``RejectionCode``, so the dialect
models stay declarative pydantic models and ``rejection_of`` turns the first error into
(code, readable reason). Nothing here converts a number before its shape and size are checked:
``int(Decimal("1e999000"))`` takes seconds of CPU, a 64-character decimal with an exponent of at
most 30 takes microseconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from importer.models import RejectedImage, RejectionCode
from importer.settings import Settings

MAX_NUMBER_CHARS = 64  # longest numeric string looked at; real prices have a dozen characters
MAX_EXPONENT = 30  # |exponent| of a numeric string; beyond it no price is meant
MAX_EXTERNAL_ID_INT = 2**63 - 1  # numeric ids are bigint-sized at every provider we speak
ALLOWED_IMAGE_SCHEMES = ("http", "https")

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?")
_NON_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan|snan)", re.IGNORECASE)
_CURRENCY = re.compile(r"[A-Za-z]{3}")


@dataclass(frozen=True)
class RecordLimits:
    """The bounds a parser applies; defaults equal the production settings' defaults."""

    id_max_chars: int = 200
    text_max_chars: int = 1_000
    description_max_chars: int = 100_000
    max_images: int = 250
    url_max_chars: int = 2_000
    price_max_cents: int = 100_000_000_000
    # Records one page may list before the page itself is refused: parsing, rejection rows and log
    # lines grow with it, on the worker's event loop (a 20 MiB page could list 10 million).
    page_max_records: int = 1_000

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordLimits:
        return cls(
            id_max_chars=settings.product_id_max_chars,
            text_max_chars=settings.product_text_max_chars,
            description_max_chars=settings.product_description_max_chars,
            max_images=settings.product_max_images,
            url_max_chars=settings.product_image_url_max_chars,
            price_max_cents=settings.price_max_cents,
            page_max_records=settings.provider_page_max_records,
        )


DEFAULT_LIMITS = RecordLimits()


MAX_JSON_INT_DIGITS = 40  # longer integer literals stay text, for the field checks to reject


def json_int(literal: str) -> int | str:
    """``parse_int`` for provider JSON: a huge integer literal must reject its record, not the page.

    Python refuses integer literals over 4,300 digits (ValueError: the whole page would be
    malformed) and converts shorter ones in quadratic time; kept as text, the literal reaches the
    record's field check, which rejects it with a code like any other non-number.
    """
    return int(literal) if len(literal) <= MAX_JSON_INT_DIGITS else literal


def reject(code: RejectionCode, message: str) -> PydanticCustomError:
    """The error a field check raises; ``message`` never contains the offending value itself."""
    return PydanticCustomError(code.value, message.replace("{", "(").replace("}", ")"))


def limits_of(info: ValidationInfo) -> RecordLimits:
    context = info.context
    if isinstance(context, dict):
        limits = context.get("limits")
        if isinstance(limits, RecordLimits):
            return limits
    return DEFAULT_LIMITS


def is_storable(text: str) -> bool:
    """Postgres ``text`` refuses NUL, and UTF-8 cannot encode a lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(value: Any, name: str, max_chars: int, *, required: bool) -> str:
    """A storable string of at most ``max_chars``; None or absent is "" when not required."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise reject(RejectionCode.INVALID_FIELD, f"{name} must be a string")
    if len(value) > max_chars:  # before any scan of the content: cheap, and bounds the scan
        raise reject(RejectionCode.TEXT_TOO_LONG, f"{name} has {len(value)} characters, over the {max_chars} allowed")
    if not is_storable(value):
        raise reject(RejectionCode.TEXT_NOT_STORABLE, f"{name} contains a NUL character or a lone surrogate")
    if required and not value.strip():
        raise reject(RejectionCode.MISSING_FIELD, f"{name} is empty")
    return value


def bounded_decimal(value: str, name: str) -> Decimal:
    """Parse a numeric string only once its length and exponent are known to be small."""
    s = value.strip()
    if len(s) > MAX_NUMBER_CHARS:
        raise reject(
            RejectionCode.INVALID_FIELD, f"{name} has {len(s)} characters; a number has at most {MAX_NUMBER_CHARS}"
        )
    if _NON_FINITE.fullmatch(s):
        raise reject(RejectionCode.NUMBER_NOT_FINITE, f"{name} is not a finite number")
    match = _DECIMAL.fullmatch(s)
    if match is None:
        raise reject(RejectionCode.INVALID_FIELD, f"{name} is not a number")
    exponent = match.group(1)
    if exponent is not None and abs(int(exponent)) > MAX_EXPONENT:  # <= 64 digits: int() is cheap
        raise reject(RejectionCode.NUMBER_OUT_OF_RANGE, f"{name} has an exponent beyond +/-{MAX_EXPONENT}")
    try:
        return Decimal(s)
    except InvalidOperation as exc:  # unreachable after the regex; kept so it can never escape
        raise reject(RejectionCode.INVALID_FIELD, f"{name} is not a number") from exc


def _in_range(cents: Decimal | int, name: str, max_cents: int) -> None:
    if cents < 0:
        raise reject(RejectionCode.NUMBER_OUT_OF_RANGE, f"{name} is negative")
    if cents > max_cents:
        raise reject(RejectionCode.NUMBER_OUT_OF_RANGE, f"{name} is over the {max_cents}-cent maximum")


def cents(value: Any, name: str, max_cents: int, *, unit_cents: bool) -> int:
    """A price as whole cents; ``unit_cents`` False means the value is in currency units.

    ints, finite floats and numeric strings are accepted; bools are not numbers here.
    Whole-unit values are rounded half-even to the cent, as the seed's parser did.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise reject(RejectionCode.INVALID_FIELD, f"{name} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise reject(RejectionCode.NUMBER_NOT_FINITE, f"{name} is not a finite number")
    if isinstance(value, int):
        amount = value if unit_cents else value * 100
        _in_range(amount, name, max_cents)  # int comparison: cheap whatever the size
        return amount
    number = bounded_decimal(value, name) if isinstance(value, str) else Decimal(repr(value))
    if not number.is_finite():  # Decimal(repr(float)) of a finite float is finite; belt and braces
        raise reject(RejectionCode.NUMBER_NOT_FINITE, f"{name} is not a finite number")
    amount_dec = number if unit_cents else number * 100
    _in_range(amount_dec, name, max_cents)  # before any conversion to int
    if unit_cents and amount_dec != amount_dec.to_integral_value():
        raise reject(RejectionCode.INVALID_FIELD, f"{name} is not a whole number of cents")
    return int(amount_dec.to_integral_value(rounding=ROUND_HALF_EVEN))


def currency(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise reject(RejectionCode.INVALID_FIELD, f"{name} must be a three-letter currency code")
    return value


def numeric_id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise reject(RejectionCode.INVALID_FIELD, f"{name} must be an integer")
    if not 1 <= value <= MAX_EXTERNAL_ID_INT:
        raise reject(RejectionCode.NUMBER_OUT_OF_RANGE, f"{name} is outside 1..{MAX_EXTERNAL_ID_INT}")
    return value


def image_list(value: Any, name: str, max_images: int) -> list[Any]:
    """The list itself is the product's business (bounded); each entry is checked on its own."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise reject(RejectionCode.INVALID_FIELD, f"{name} must be a list")
    if len(value) > max_images:
        raise reject(RejectionCode.TOO_MANY_IMAGES, f"{name} lists {len(value)} images, over the {max_images} allowed")
    return value


def check_image_url(raw: Any, position: int, limits: RecordLimits) -> str | RejectedImage:
    """The URL if it can be fetched at all, else the image's rejection; never raises.

    ``urlsplit`` raises ValueError on an invalid IPv6 literal and ``.port`` on a port out of
    range; httpx refuses some URLs urlsplit accepts (bad IDNA hosts), so both parsers must agree.
    Whether the host, port and address are *allowed* is the download's business, not this one.
    """

    def bad(reason: str, code: RejectionCode = RejectionCode.IMAGE_URL_INVALID, *, keep: bool = True) -> RejectedImage:
        return RejectedImage(url=raw if keep else None, position=position, code=code, reason=reason)

    if not isinstance(raw, str):
        return RejectedImage(None, position, RejectionCode.IMAGE_URL_INVALID, "image URL is not a string")
    if not raw:
        return bad("image URL is empty", keep=False)
    if len(raw) > limits.url_max_chars:
        return bad(f"image URL has {len(raw)} characters, over the {limits.url_max_chars} allowed", keep=False)
    if not is_storable(raw):
        return bad("image URL contains a NUL character or a lone surrogate", keep=False)
    # The URL is part of a unique index, whose entries Postgres caps at about 2,700 bytes: a
    # URL of 2,000 CJK characters (6,000 bytes) must reject its image, not fail the page's insert.
    size = len(raw.encode("utf-8"))
    if size > limits.url_max_chars:
        return bad(f"image URL is {size} bytes in UTF-8, over the {limits.url_max_chars} allowed", keep=False)
    if any(ch <= " " or ch == "\x7f" for ch in raw):
        # urlsplit silently drops tabs and newlines: what would be fetched is not what was listed
        return bad("image URL contains whitespace or control characters")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - evaluated for its ValueError on a port out of range
        host = parts.hostname
    except ValueError as exc:
        return bad(f"image URL cannot be parsed: {str(exc)[:200]}")
    if parts.scheme.lower() not in ALLOWED_IMAGE_SCHEMES:
        return bad("image URL scheme is not http or https", RejectionCode.IMAGE_SCHEME_NOT_ALLOWED)
    if not host:
        return bad("image URL has no host")
    try:
        httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        return bad(f"image URL is not a valid HTTP URL: {str(exc)[:200]}")
    return raw


def safe_external_id(value: Any, limits: RecordLimits) -> str | None:
    """The id of a rejected record, when it is one we can store and show; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) <= MAX_EXTERNAL_ID_INT:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= limits.id_max_chars and is_storable(value):
        return value
    return None


def rejection_of(exc: ValidationError) -> tuple[RejectionCode, str]:
    """The first error as (code, "field.path: message"); pydantic's own types map to two codes."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return RejectionCode.INVALID_FIELD, "record is invalid"
    first = errors[0]
    kind = str(first.get("type", ""))
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first.get("msg", "invalid"))
    try:
        code = RejectionCode(kind)
    except ValueError:
        code = RejectionCode.MISSING_FIELD if kind == "missing" else RejectionCode.INVALID_FIELD
    # our own messages already name the field; pydantic's ("Field required") do not
    named = where and message.startswith(str(first.get("loc", ("",))[-1]))
    reason = f"{where}: {message}" if where and not named else message
    return code, reason[:500]
