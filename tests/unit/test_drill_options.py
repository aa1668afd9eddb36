"""Drill options are validated before anything starts; the in-flight check reads the kernel's view of a socket."""

from __future__ import annotations

import os
import socket

import pytest

from devtools.drill import DrillOptions, loopback_origin
from devtools.processes import requests_picked_up


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8000",  # not loopback: drill traffic stays on this machine
        "https://127.0.0.1:8000",
        "http://127.0.0.1",  # no port
        "127.0.0.1:8000",
        "http://example.com:80",
        "http://127.0.0.1:8000/nowhere",  # every request would be a 404: a meaningless PASS
        "http://127.0.0.1:8000?x=1",
        "http://127.0.0.1:8000#f",
        "http://evil.example@127.0.0.1:8000",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:80:90",
        "http://localhost.:8000",
    ],
)
def test_url_must_be_loopback_http_with_a_port(url: str) -> None:
    with pytest.raises(ValueError, match="--url .* must be http://<loopback host>:<port>"):
        DrillOptions(url=url, pid=os.getpid()).validate()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"event": "explode"}, "--event must be one of"),
        ({"url": "http://127.0.0.1:8000"}, "--url and --pid go together"),
        ({"duration": float("nan")}, "--duration must be a number of seconds"),
        ({"inflight": -1}, "--inflight >= 0"),
    ],
)
def test_bad_options_name_the_option(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DrillOptions(**options).validate()


def test_requests_picked_up_follows_accept_and_read() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert requests_picked_up(port, 0)  # listening, nothing queued
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert not requests_picked_up(port, 1)  # completed by the kernel, not accepted
            conn, _ = listener.accept()
            with conn:
                assert not requests_picked_up(port, 1)  # accepted, request unread
                conn.recv(1024)
                assert requests_picked_up(port, 1)
                assert not requests_picked_up(port, 2)


def test_requests_picked_up_is_false_without_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not requests_picked_up(port, 0)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("http://127.0.0.1:8000/", ("127.0.0.1", 8000)),
        ("HTTP://LOCALHOST:8001", ("localhost", 8001)),
        ("http://[::1]:8002", ("::1", 8002)),
    ],
)
def test_loopback_origin_accepts_loopback_hosts(url: str, origin: tuple[str, int]) -> None:
    assert loopback_origin(url) == origin
