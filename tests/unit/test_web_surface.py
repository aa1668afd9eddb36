"""Breaking the HTTP surface through the real ASGI application (probes → body bound → lean/full Django): oversized
bodies, wrong content types, cache headers of order pages, control characters reaching the access log."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from coffee_payment.orders.state import OrderStatus
from tests.unit.factories import make_order

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _app():
    from coffee_payment.asgi import application

    return application


async def _request(method: str, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        return await asyncio.wait_for(client.request(method, path, **kwargs), 20)


async def _raw(
    method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes], *, complete: bool = True
) -> tuple[int, bytes]:
    """Drive the ASGI app by hand: ``chunks`` are the request body messages (the last with more_body False unless
    not ``complete``), and a receive past them waits as a client that sends nothing more would. Returns (status,
    body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    queue = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1 or not complete}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # a client that declared more than it sends
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await asyncio.wait_for(_app()(scope, receive, send), 10)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    "path", ["/v1/initiate-payment", "/v1/yook-pay-webhook", "/v1/order-status/x", "/admin/login/"]
)
async def test_a_declared_huge_body_is_413_at_once_not_a_hang(path: str) -> None:
    """Was: the server waited for 10 GB that never came (the client's timeout ended it; nothing answered)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"10000000000")]
    status, body = await _raw("POST", path, headers, [b"{"])
    assert status == 413
    assert b"request body too large" in body


@pytest.mark.parametrize("path", ["/v1/initiate-payment", "/v1/tbank-webhook", "/admin/login/"])
async def test_a_streamed_body_past_the_limit_is_cut_with_a_413(path: str) -> None:
    """Chunked (no Content-Length): Django would spool every byte to a temporary file, with no limit."""
    chunk = b" " * (1024 * 1024)
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2 * 1024 * 1024):
        headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
        status, body = await _raw("POST", path, headers, [b"{", *[chunk] * 3, b"}"])
    assert status == 413
    assert b"the limit is 2097152 bytes" in body


@pytest.mark.parametrize("declared", [False, True])
async def test_a_refused_body_is_read_to_its_end_before_the_413(declared: bool) -> None:
    """A client that writes its whole body before reading must see the 413, not a connection reset: the rest of
    the body is read and dropped (bounded: bodylimit.LINGER_S, LINGER_MAX_BYTES) before the answer and the close.
    Was: the 413 was sent with ~0.5 MB of a 3 MB body unread, and the close reset the connection."""
    chunks = [b"{", *[b" " * (1024 * 1024)] * 3, b"}"]
    length = sum(map(len, chunks))
    headers = [(b"content-length", str(length).encode())] if declared else [(b"transfer-encoding", b"chunked")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/tbank-webhook",
        "raw_path": b"/v1/tbank-webhook",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    events: list[str] = []
    queue = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]

    async def receive() -> dict:
        if queue:
            events.append("read")
            return queue.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        events.append(message["type"] if message["type"] != "http.response.start" else str(message["status"]))

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2 * 1024 * 1024):
        await asyncio.wait_for(_app()(scope, receive, send), 10)
    assert not queue  # every part of the body was taken off the connection …
    assert events[events.index("413") - 1] == "read"  # … before the answer started
    assert events.count("413") == 1


@pytest.mark.django_db(transaction=True)
async def test_a_body_over_django_s_limit_is_413_with_a_reason_not_a_bare_400() -> None:
    """Was: RequestDataTooBig → Django's English "Bad Request (400)" page with no reason, and an ERROR traceback."""
    response = await _request(
        "POST",
        "/v1/initiate-payment",
        content=b"{" + b" " * 3_000_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large: the limit is 2621440 bytes"}


@pytest.mark.django_db(transaction=True)
async def test_a_body_within_the_limit_still_reaches_the_view() -> None:
    response = await _request("POST", "/v1/initiate-payment", json={"order_id": "nope"})
    assert response.status_code == 404 and response.json() == {"error": "order not found"}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_control_characters_in_the_path_cannot_forge_an_access_line(fmt: str) -> None:
    """``GET /v1/x%0d%0a2026-… GET /admin/ 200 FORGED`` was written as two access lines (uvicorn decodes the path)."""
    import io
    import json

    from coffee_payment.monitoring import logformat
    from coffee_payment.monitoring.asgi import observe

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    stream = io.StringIO()
    log = logformat.access_logger(fmt, stream)
    forged = "/v1/x\r\n2026-01-01T00:00:00.000Z GET /admin/ 200 FORGED\x00\u2028"
    scope = {"type": "http", "method": "GET", "path": forged, "headers": [], "client": ("10.0.0.1", 1)}

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    asyncio.run(observe(app, trusted=lambda ip: False, access_log=log, route_of=lambda p: "x")(scope, receive, send))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    logged = json.loads(lines[0])["path"] if fmt == "json" else lines[0]
    assert "/v1/x\\r\\n2026-01-01T00:00:00.000Z GET /admin/ 200 FORGED\\x00\\u2028" in logged


@pytest.mark.django_db(transaction=True)
async def test_order_pages_and_status_json_are_never_cached() -> None:
    """Was: no Cache-Control at all on the status page, the status JSON or the scan's redirect naming the order id:
    a shared cache (or a heuristic one) could keep an order's page or serve a stale status."""
    order = await sync_to_async(make_order)(status=OrderStatus.CREATED)
    query = (
        f"deviceUuid={order.device.device_uuid}&drinkNo={order.drink_no}&drinkName=x&size={order.size}"
        f"&uuid={order.machine_uuid}"
    )
    for path in (
        f"/v1/order-status-page?order_id={order.id}",
        f"/v1/order-status/{order.id}",
        "/v1/order-status/unknown",
        "/v1/order-status-page?order_id=unknown",
        f"/v1/pay?{query}",
        "/v1/pay?deviceUuid=bad!",
    ):
        response = await _request("GET", path)
        assert response.status_code in (200, 302, 400, 404), (path, response.status_code)
        assert "no-store" in response.headers.get("cache-control", ""), path
        assert "private" in response.headers["cache-control"], path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None, "application/jsonx"],
)
async def test_initiate_payment_refuses_what_another_site_s_form_can_send(content_type: str | None) -> None:
    """Was: any content type was parsed as JSON, so a cross-site form or text/plain POST (no CORS preflight) started
    a payment or spent the customer address's rate limit."""
    order = await sync_to_async(make_order)(status=OrderStatus.CREATED)
    headers = {"content-type": content_type} if content_type else {}
    with override_settings(RATE_LIMIT_INITIATE_PER_MINUTE=1):
        for _ in range(3):  # never counted against the limit (would be 429 from the second on)
            response = await _request(
                "POST", "/v1/initiate-payment", content=f'{{"order_id": "{order.id}"}}'.encode(), headers=headers
            )
            assert response.status_code == 415
            assert response.json()["error"].startswith("content type must be application/json")
        ok = await _request(
            "POST",
            "/v1/initiate-payment",
            content=b'{"order_id": "unknown"}',
            headers={"content-type": "Application/JSON; charset=utf-8"},
        )
    assert ok.status_code == 404


@pytest.mark.parametrize("path", ["/v1/order-status/x", "/v1/order-status-page?order_id=x", "/admin/login/"])
async def test_a_bad_host_is_a_russian_400_with_a_reason_and_one_warning_line(path: str) -> None:
    """Was: Django's English "Bad Request (400)" page with no reason, and an ERROR with a 15-line traceback in the
    log for every request any scanner sends with a foreign Host."""
    import io
    import logging

    from coffee_payment.monitoring.logformat import SuspiciousRequestFilter

    app = _app()  # its first import sets Django up again, which configures logging anew
    (handler,) = [
        h
        for h in logging.getLogger("django.security").handlers
        if any(isinstance(f, SuspiciousRequestFilter) for f in h.filters)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as client:
            response = await client.get(path)
    finally:
        handler.setStream(previous)
    assert response.status_code == 400
    assert "Неверный запрос" in response.text and "не на адрес этого сервиса" in response.text
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and " WARNING " in lines[0]
    assert "Invalid HTTP_HOST header: 'evil.example'" in lines[0]


async def test_too_many_query_parameters_is_a_russian_400() -> None:
    """Django's DATA_UPLOAD_MAX_NUMBER_FIELDS (TooManyFieldsSent): was the English bare 400 and an ERROR traceback."""
    query = "&".join(f"a{i}=1" for i in range(1500))
    response = await _request("GET", f"/v1/pay?{query}")
    assert response.status_code == 400 and "Неверный запрос" in response.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1/pay", "GET"),
        ("PUT", "/v1/order-status-page?order_id=x", "GET"),
        ("DELETE", "/v1/order-status/x", "GET"),
        ("OPTIONS", "/v1/order-status/x", "GET"),
        ("GET", "/v1/initiate-payment", "POST"),
        ("GET", "/v1/yook-pay-webhook", "POST"),
        ("PATCH", "/v1/tbank-webhook", "POST"),
    ],
)
async def test_a_wrong_method_is_a_405_with_the_reason(method: str, path: str, allowed: str) -> None:
    """Was: Django's require_GET/require_POST answered an empty 405 (text/html, no body)."""
    response = await _request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allowed
    assert response.json() == {"error": f"method {method} is not allowed here; allowed: {allowed}"}


@pytest.mark.django_db(transaction=True)
async def test_markup_in_shown_names_is_escaped_on_the_status_page() -> None:
    """Held: drink and machine names (from the QR link and Tmetr) and the help line are escaped in HTML, in the
    embedded JSON and in the tel: link."""
    evil = '</script><script>alert(1)</script>"><img src=x onerror=alert(2)>'
    order = await sync_to_async(make_order)(status=OrderStatus.CREATED, name=evil, location=evil, help_line=evil)
    await sync_to_async(type(order).objects.filter(pk=order.pk).update)(drink_name=evil)
    response = await _request("GET", f"/v1/order-status-page?order_id={order.id}")
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text and "<img src=x" not in response.text
    assert response.text.count("<script>") == 1  # the page's own (json_script uses type="application/json")


@pytest.mark.parametrize("path", ["/v1/initiate-payment", "/v1/yook-pay-webhook", "/admin/login/"])
async def test_a_body_that_stops_arriving_is_a_408_not_a_request_held_open(path: str, monkeypatch) -> None:
    """Was: Content-Length: 100 and one byte sent held the request open as long as the client kept the connection
    (uvicorn has no body timeout)."""
    from coffee_payment.serving import bodylimit

    monkeypatch.setattr(bodylimit, "BODY_CHUNK_TIMEOUT_S", 0.2)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    status, body = await _raw("POST", path, headers, [b"{"], complete=False)
    assert status == 408
    assert b"request body not received in time: more than 0.2 s between parts" in body
