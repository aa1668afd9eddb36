"""The lean /v1/ handler: Host validation and Django's security headers, with the middleware's own settings."""

from __future__ import annotations

import threading

import httpx
import pytest
from django.test import override_settings
from django.urls import path

from coffee_payment.serving.lean import LeanASGIHandler

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def get(path: str, host: str = "localhost", **headers: str) -> httpx.Response:
    """GET ``path`` through a LeanASGIHandler built under the current settings (middleware read them at init)."""
    transport = httpx.ASGITransport(app=LeanASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        return await client.get(path, headers=headers)


async def test_security_headers_on_customer_paths() -> None:
    response = await get("/v1/no-such-path")
    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # plain http


async def test_host_outside_allowed_hosts_is_a_400() -> None:
    response = await get("/v1/no-such-path", host="evil.example")
    assert response.status_code == 400


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_SSL_HOST="pay.example.com")
async def test_ssl_redirect_honours_secure_ssl_host() -> None:
    response = await get("/v1/no-such-path?x=1")
    assert response.status_code == 301
    assert response.headers["location"] == "https://pay.example.com/v1/no-such-path?x=1"


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_HSTS_SECONDS=3600,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_HSTS_PRELOAD=True,
)
async def test_hsts_with_every_secure_hsts_option_behind_a_tls_proxy() -> None:
    response = await get("/v1/no-such-path", **{"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"] == "max-age=3600; includeSubDomains; preload"


async def test_language_is_russian_by_default_and_english_on_request() -> None:
    """The lean handler resolves the language itself (no LocaleMiddleware there): ru by default, en on request."""
    ru = await get("/v1/no-such-path")
    assert ru.headers["content-language"] == "ru" and "accept-language" in ru.headers["vary"].lower()
    assert '<html lang="ru">' in ru.text and "Страница не найдена" in ru.text
    en = await get("/v1/no-such-path", **{"Accept-Language": "en-US,en;q=0.9"})
    assert en.headers["content-language"] == "en"
    assert '<html lang="en">' in en.text and "Page not found" in en.text
    fr = await get("/v1/no-such-path", **{"Accept-Language": "fr-FR"})
    assert fr.headers["content-language"] == "ru"


async def _thread_hops(path: str, monkeypatch: pytest.MonkeyPatch, **headers: str) -> int:
    """How many sync_to_async calls one request through the lean handler makes."""
    import asgiref.sync

    calls = []
    original = asgiref.sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__name__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counting)
    await get(path, **headers)
    monkeypatch.undo()
    return len(calls)


async def test_language_resolution_adds_no_thread_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: the language is resolved inline on the event loop; the request makes as many thread hops with the
    locale middleware as without it."""
    from django.conf import settings

    with_locale = await _thread_hops("/v1/no-such-path", monkeypatch, **{"Accept-Language": "en"})
    without = [m for m in settings.LEAN_MIDDLEWARE if not m.endswith("LeanLocaleMiddleware")]
    with override_settings(LEAN_MIDDLEWARE=without):
        without_locale = await _thread_hops("/v1/no-such-path", monkeypatch, **{"Accept-Language": "en"})
    assert with_locale == without_locale


# --- reused request threads (RequestThreads) -------------------------------------------------------------------


_thread_tokens = threading.local()


def _sync_ident(request):
    """A sync view: a token unique to the thread it runs on. Not the thread's name (every executor names its
    thread ``request_0``) nor its ident (recycled once a thread has ended)."""
    import uuid

    from django.http import JsonResponse

    if not hasattr(_thread_tokens, "token"):
        _thread_tokens.token = uuid.uuid4().hex
    return JsonResponse({"ident": _thread_tokens.token})


async def _two_hops(request):
    """An async view with two sync_to_async calls: both threads, and whether they were the same."""
    from asgiref.sync import sync_to_async
    from django.http import JsonResponse

    first = await sync_to_async(threading.get_ident)()
    second = await sync_to_async(threading.get_ident)()
    return JsonResponse({"ident": first, "same": first == second})


_meeting = threading.Barrier(2, timeout=5)


async def _meet(request):
    """Waits in its sync thread until a second request's thread arrives: only concurrent threads can meet."""
    from asgiref.sync import sync_to_async
    from django.http import JsonResponse

    ident = await sync_to_async(lambda: (_meeting.wait(), threading.get_ident())[1])()
    return JsonResponse({"ident": ident})


urlpatterns = [
    path("v1/t/sync", _sync_ident),
    path("v1/t/hops", _two_hops),
    path("v1/t/meet", _meet),
]


@override_settings(ROOT_URLCONF=__name__)
async def test_sequential_requests_reuse_one_request_thread() -> None:
    """Django starts (and joins) a thread per request; the lean handler lends the next request the same one."""
    handler = LeanASGIHandler()
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        idents = [(await client.get("/v1/t/sync")).json()["ident"] for _ in range(3)]
    assert len(set(idents)) == 1 and idents[0] != threading.current_thread().name
    assert handler.threads.idle() == 1


@override_settings(ROOT_URLCONF=__name__)
async def test_a_request_runs_all_its_sync_code_on_one_thread() -> None:
    """Thread-sensitive as Django requires: every sync_to_async call of one request lands on one thread."""
    transport = httpx.ASGITransport(app=LeanASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get("/v1/t/hops")
    assert response.status_code == 200 and response.json()["same"] is True


@override_settings(ROOT_URLCONF=__name__)
async def test_concurrent_requests_get_a_thread_each() -> None:
    """Two requests in flight at once never share a thread: their sync calls meet at a barrier, which would time
    out (500) if one waited behind the other on a shared thread."""
    import asyncio

    _meeting.reset()
    handler = LeanASGIHandler()
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        first, second = await asyncio.gather(client.get("/v1/t/meet"), client.get("/v1/t/meet"))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["ident"] != second.json()["ident"]
    assert handler.threads.idle() == 2


async def test_a_request_that_raised_does_not_give_its_thread_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request cancelled or failing inside the handler may still have a call on its thread: that executor is
    shut down, never lent to the next request."""
    handler = LeanASGIHandler()
    lent = []
    borrow = handler.threads.borrow

    def recording_borrow():
        lent.append(borrow())
        return lent[-1]

    async def failing_handle(scope, receive, send):
        raise RuntimeError("boom")

    monkeypatch.setattr(handler.threads, "borrow", recording_borrow)
    monkeypatch.setattr(handler, "handle", failing_handle)
    with pytest.raises(RuntimeError):
        await handler({"type": "http", "path": "/v1/x"}, None, None)
    assert handler.threads.idle() == 0
    with pytest.raises(RuntimeError):  # shut down: takes no more work
        lent[0].submit(int)


def test_idle_threads_are_bounded() -> None:
    from coffee_payment.serving.lean import RequestThreads

    threads = RequestThreads(keep=2)
    executors = [threads.borrow() for _ in range(3)]
    assert len(set(map(id, executors))) == 3
    for executor in executors:
        threads.give_back(executor)
    assert threads.idle() == 2
    with pytest.raises(RuntimeError):
        executors[2].submit(int)


# --- request signals inline when the request never used its thread ----------------------------------------------


async def _pure_async(request):
    """An async view with no sync code at all."""
    from django.http import JsonResponse

    return JsonResponse({"ok": True})


urlpatterns.append(path("v1/t/async", _pure_async))


async def _hops_of(path_: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sync_to_async calls (by function name) one request to ``path_`` makes through the lean handler."""
    import asgiref.sync

    calls: list[str] = []
    original = asgiref.sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        calls.append(getattr(self.func, "__name__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counting)
    transport = httpx.ASGITransport(app=LeanASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert (await client.get(path_)).status_code == 200
    monkeypatch.undo()
    return calls


@override_settings(ROOT_URLCONF=__name__)
async def test_a_request_that_never_used_its_thread_sends_the_signals_inline(monkeypatch) -> None:
    """Django hops to the request's thread for request_started and again for response.close(); with only
    Django's receivers listening and no sync code run, the lean handler makes neither hop."""
    assert await _hops_of("/v1/t/async", monkeypatch) == []


@override_settings(ROOT_URLCONF=__name__)
async def test_a_request_that_used_its_thread_closes_the_response_there(monkeypatch) -> None:
    """Once the request ran sync code on its thread, request_finished (response.close) runs there too, so that
    thread's database connection goes back to the pool."""
    assert await _hops_of("/v1/t/sync", monkeypatch) == ["_sync_ident", "close"]


@override_settings(ROOT_URLCONF=__name__)
async def test_a_foreign_signal_receiver_gets_django_s_hops(monkeypatch) -> None:
    """A receiver that is not Django's own could block or touch thread state: then both signals hop as in
    Django, and the receiver runs on the request's thread."""
    from django.core.signals import request_finished, request_started

    threads: list[str] = []

    def receiver(**kwargs) -> None:
        threads.append(threading.current_thread().name)

    request_started.connect(receiver)
    request_finished.connect(receiver)
    try:
        hops = await _hops_of("/v1/t/async", monkeypatch)
    finally:
        request_started.disconnect(receiver)
        request_finished.disconnect(receiver)
    assert len(hops) == 2 and hops[1] == "close"
    assert len(threads) == 2 and all(name.startswith("request") for name in threads)


def test_inline_receivers_are_the_ones_django_connects() -> None:
    """Pins the Django version's own receivers (a Django upgrade that adds one turns the inline path off)."""
    from django.core.signals import request_finished, request_started

    from coffee_payment.serving.lean import LeanASGIHandler as Handler
    from coffee_payment.serving.lean import signal_is_inline_safe

    assert signal_is_inline_safe(request_started, Handler)
    assert signal_is_inline_safe(request_finished, Handler)


def _query_count(request):
    """A sync view making one query: the queries its thread's connection has logged (DEBUG)."""
    from django.db import connection
    from django.http import JsonResponse

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"queries": len(connection.queries)})


urlpatterns.append(path("v1/t/queries", _query_count))


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=__name__, DEBUG=True)
async def test_with_debug_each_request_logs_only_its_own_queries() -> None:
    """Django resets the query log at request_started on the request's thread; on a reused thread, sending it
    inline (on the loop's thread) would leave each request seeing every earlier request's queries."""
    handler = LeanASGIHandler()
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        counts = [(await client.get("/v1/t/queries")).json()["queries"] for _ in range(3)]
    assert handler.threads.idle() == 1  # one reused thread served all three
    assert counts == [1, 1, 1]
