"""The Toxiproxy wrapper keeps its own address: the library's class-level one is pinned per call."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from toxiproxy import api as toxiproxy_api

from lab.stack.toxiproxy import ToxiproxyClient, ToxiproxyError


class Answer:
    def __init__(self, status: int, body: bytes = b"{}") -> None:
        self.status_code = status
        self.content = body
        self.text = body.decode()

    def json(self) -> Any:
        import json

        return json.loads(self.content)


def test_each_call_uses_this_clients_address_and_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, object]] = []

    def fake_get(url: str, params: object = None, **kwargs: object) -> Answer:
        seen.append((url, kwargs.get("timeout")))
        return Answer(200, b'{"version": "2.12.0"}')

    monkeypatch.setattr(requests, "get", fake_get)
    before = (toxiproxy_api.APIConsumer.host, toxiproxy_api.APIConsumer.port)
    a = ToxiproxyClient("127.0.0.1", 21001, timeout=1.5)
    b = ToxiproxyClient("127.0.0.1", 21002, timeout=2.5)
    threads = [threading.Thread(target=c.version) for c in (a, b, a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(
        [("http://127.0.0.1:21001/version", 1.5), ("http://127.0.0.1:21002/version", 2.5)] * 2
    )
    assert (toxiproxy_api.APIConsumer.host, toxiproxy_api.APIConsumer.port) == before


def test_refusals_and_silence_become_named_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    client = ToxiproxyClient("127.0.0.1", 21003)
    monkeypatch.setattr(requests, "post", lambda url, **kw: Answer(409, b'{"error": "proxy already exists"}'))
    with pytest.raises(ToxiproxyError, match="ProxyExists"):
        client.set_enabled("postgres", False)

    def silent(url: str, **kwargs: object) -> Answer:
        raise requests.Timeout("read timed out")

    monkeypatch.setattr(requests, "get", silent)
    with pytest.raises(ToxiproxyError, match="did not answer"):
        client.proxies()


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ToxiproxyClient("10.0.0.5", 8474)
