"""Helpers for provider/Tmetr client tests over ``httpx.MockTransport``: a recording handler and a bounded
``asyncio.run``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class Recorder:
    """A MockTransport handler that keeps every request and answers with ``reply(request)``."""

    def __init__(self, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    def body(self, index: int = -1) -> Any:
        """The JSON body of request ``index`` (the last by default)."""
        return json.loads(self.requests[index].content)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a fresh event loop, failing after 10 s."""
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def yookassa_created(request: httpx.Request, *, payment_id: str, url: str) -> httpx.Response:
    """YooKassa's answer to ``POST payments``: a pending payment ``payment_id`` echoing the request's amount and
    metadata, with a redirect confirmation to ``url`` (https://yookassa.ru/developers/api#create_payment)."""
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json={
            "id": payment_id,
            "status": "pending",
            "paid": False,
            "amount": body["amount"],
            "confirmation": {"type": "redirect", "confirmation_url": url},
            "metadata": body["metadata"],
            "created_at": "2025-11-29T10:00:00.000Z",
            "test": True,
        },
    )
