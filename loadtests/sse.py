"""Server-Sent Events, parsed from the lines of a streamed response.

requests has no SSE client and the maintained ones either pull in asyncio or buffer whole
events with their own threads; the format is four rules (WHATWG HTML, "event stream
interpretation"), so the few lines here are cheaper than a dependency under gevent:
``event:``/``data:`` fields accumulate, a blank line dispatches, ``:`` starts a comment (the
API's keep-alive pings), anything else (``id:``, ``retry:``) is ignored by this client.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_EVENT_CHARS = 1_000_000  # one event's data; a runaway stream must not eat the load generator


class SseError(ValueError):
    """The stream is not SSE (an event larger than MAX_EVENT_CHARS)."""


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str

    def json(self) -> Any:
        """The data as JSON; None when it is not JSON (a client treats that as no information)."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


def iter_events(lines: Iterable[str | bytes]) -> Iterator[SseEvent]:
    """Events as they complete; a trailing event without its blank line is dropped, as the spec says."""
    event = ""
    data: list[str] = []
    size = 0
    for raw in lines:
        line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if line == "":
            if data:
                yield SseEvent(event or "message", "\n".join(data))
            event, data, size = "", [], 0
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            size += len(value)
            if size > MAX_EVENT_CHARS:
                raise SseError(f"an event's data exceeds {MAX_EVENT_CHARS} characters")
            data.append(value)
