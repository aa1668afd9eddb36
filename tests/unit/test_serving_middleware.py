"""HealthMiddleware answers probes before Host validation under WSGI (runserver) and async Django."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from coffee_payment.serving import probes
from coffee_payment.serving.middleware import HealthMiddleware
from coffee_payment.serving.probes import DrainState


def _never_called(request):
    raise AssertionError("probe reached the rest of the stack")


@pytest.mark.parametrize("path", ["/health", "/livez", "/readyz"])
def test_sync_probe_answered_for_any_host(path):
    request = RequestFactory().get(path, HTTP_HOST="10.1.2.3:8000")  # a pod IP, not in ALLOWED_HOSTS
    response = HealthMiddleware(_never_called)(request)
    assert response.status_code == 200 and json.loads(response.content) == {"status": "ok"}
    assert response["X-Worker-Pid"].isdigit()


def test_sync_readyz_draining(monkeypatch):
    monkeypatch.setattr(probes, "STATE", DrainState(shutting_down=True))
    response = HealthMiddleware(_never_called)(RequestFactory().get("/readyz"))
    assert response.status_code == 503 and json.loads(response.content) == {"status": "draining"}


def test_sync_other_paths_pass_through():
    response = HealthMiddleware(lambda request: HttpResponse("app"))(RequestFactory().get("/orders/"))
    assert response.content == b"app"


def test_async_mode():
    async def get_response(request):
        return HttpResponse("app")

    middleware = HealthMiddleware(get_response)
    assert asyncio.iscoroutinefunction(middleware) or middleware.is_async
    assert asyncio.run(middleware(RequestFactory().get("/health"))).status_code == 200
    assert asyncio.run(middleware(RequestFactory().get("/x"))).content == b"app"
