"""In-memory state of one sandbox process and the notification sender."""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from starlette.requests import Request
from starlette.responses import Response

from coffee_payment.sandbox.config import fault_for, latency_seconds

NOTIFY_TIMEOUT_SECONDS = 10.0
RESPONSE_BODY_LIMIT = 2000


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with milliseconds and ``Z`` (YooKassa's ``created_at`` format)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
class Notification:
    """One notification to deliver: ``label`` is the YooKassa event or the TBank status (for the record)."""

    provider: str
    url: str
    payload: dict[str, Any]
    label: str
    payment_id: str


@dataclass
class YooKassaPayment:
    """A YooKassa payment: the wire object plus what the API does not echo back."""

    shop_id: str
    obj: dict[str, Any]
    return_url: str | None = None


@dataclass
class TBankPayment:
    """A TBank payment (one Init)."""

    payment_id: str
    terminal_key: str
    order_id: str
    amount: int
    description: str
    status: str
    notification_url: str | None
    success_url: str | None
    fail_url: str | None
    created_at: str = field(default_factory=utc_now_iso)


class Notifier:
    """Delivers notifications with one shared ``httpx.AsyncClient`` and records every attempt.

    The client is created lazily on the running loop (and re-created if the loop changed, e.g. between tests);
    ``transport`` lets tests route deliveries to an in-process app.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=NOTIFY_TIMEOUT_SECONDS)
            self._loop = loop
        return self._client

    async def post(self, note: Notification, *, timeout: float | None = None) -> dict[str, Any]:
        """POST one notification, hanging up after ``timeout`` seconds (None: the client's default); return the
        delivery record (never raises for HTTP/network errors)."""
        record: dict[str, Any] = {
            "provider": note.provider,
            "url": note.url,
            "payment_id": note.payment_id,
            ("event" if note.provider == "yookassa" else "status"): note.label,
            "http_status": None,
            "response_body": None,
            "error": None,
            "ok": False,
        }
        try:
            extra = {"timeout": timeout} if timeout is not None else {}
            response = await self._get_client().post(note.url, json=note.payload, **extra)
        except Exception as exc:  # noqa: BLE001 — any failure is recorded, the sandbox keeps running
            record["error"] = f"{type(exc).__name__}: {exc}"
        else:
            record["http_status"] = response.status_code
            record["response_body"] = response.text[:RESPONSE_BODY_LIMIT]
            if note.provider == "tbank":  # TBank counts a delivery as done only on 200 with body exactly "OK"
                record["ok"] = response.status_code == 200 and response.text == "OK"
            else:
                record["ok"] = response.is_success
        record["delivered_at"] = utc_now_iso()
        return record

    async def aclose(self) -> None:
        """Close the shared client (on app shutdown)."""
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.aclose()
            except RuntimeError:  # created on a loop that is already closed
                pass


class SandboxState:
    """Everything one sandbox app remembers; lives on ``app.state.sandbox``."""

    def __init__(self, config: Mapping[str, Any], transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.initial_config: dict[str, Any] = copy.deepcopy(dict(config))
        self.config: dict[str, Any] = copy.deepcopy(self.initial_config)
        self.notifier = Notifier(transport)
        # Not reset by /_sandbox/reset: our server may still hold PaymentIds issued before a reset.
        self._tbank_ids = itertools.count(random.randint(1_000_000_000, 4_000_000_000))
        self._tasks: set[asyncio.Task[Any]] = set()
        self.clear()

    def clear(self) -> None:
        """Forget payments, idempotence keys, make commands and deliveries."""
        self.yookassa_payments: dict[str, YooKassaPayment] = {}
        self.yookassa_refunds: dict[str, dict[str, Any]] = {}
        # (shop_id, resource, key) -> (request body, created object id)
        self.idempotence: dict[tuple[str, str, str], tuple[Any, str]] = {}
        self.tbank_payments: dict[str, TBankPayment] = {}
        self.makes: list[dict[str, Any]] = []
        # Every make request as it arrived (before latency and faults), with when and how it was answered.
        self.make_attempts: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        # Notifications queued while ``notifications.hold`` is on, delivered by release().
        self.held: list[Notification] = []
        # Every call to the emulated APIs: {"service", "method", "path", "request_id", "received_at"}.
        self.calls: list[dict[str, Any]] = []
        # API requests received per operation ("yookassa.get": 3), counted on arrival (before latency/faults).
        self.api_calls: dict[str, int] = {}

    def reset(self) -> None:
        """Back to the start-up state: clear records, restore the CLI config, cancel pending auto-pays."""
        for task in list(self._tasks):
            task.cancel()
        self.clear()
        self.config = copy.deepcopy(self.initial_config)

    def next_tbank_payment_id(self) -> str:
        """A new numeric TBank PaymentId, as text."""
        return str(next(self._tbank_ids))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait for all background tasks (auto-pay, deliveries); for tests and shutdown."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel background work and close the HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.notifier.aclose()

    async def deliver(self, notes: list[Notification]) -> list[dict[str, Any]]:
        """Deliver ``notes`` in order, applying the ``notifications`` fault config; return the records.

        ``delay_ms`` is waited once before the first notification; ``duplicate`` copies of each notification
        are sent concurrently.
        """
        settings = self.config["notifications"]
        if settings.get("hold"):
            self.held.extend(notes)
            return []
        if settings.get("delay_ms"):
            await asyncio.sleep(settings["delay_ms"] / 1000)
        copies = max(1, int(settings.get("duplicate", 1)))
        give_up = settings.get("give_up_ms")
        timeout = give_up / 1000 if give_up else None
        records: list[dict[str, Any]] = []
        for note in notes:
            batch = await asyncio.gather(*(self.notifier.post(note, timeout=timeout) for _ in range(copies)))
            self.deliveries.extend(batch)
            records.extend(batch)
        return records

    async def release(self, *, reverse: bool) -> list[dict[str, Any]]:
        """Deliver the held notifications one by one, oldest first or (``reverse``) newest first; each is sent
        once (the ``duplicate`` setting does not apply), so a test controls the arrival order exactly."""
        notes, self.held = self.held, []
        records: list[dict[str, Any]] = []
        for note in reversed(notes) if reverse else notes:
            record = await self.notifier.post(note)
            self.deliveries.append(record)
            records.append(record)
        return records

    async def latency(self, service: str) -> None:
        """Sleep the configured latency of ``service``."""
        seconds = latency_seconds(self.config, service)
        if seconds > 0:
            await asyncio.sleep(seconds)

    def fault(self, operation: str) -> str | None:
        """The configured fault for ``operation``, or None."""
        return fault_for(self.config, operation)

    async def fault_timeout(self) -> None:
        """Sleep ``timeout_seconds`` (the ``timeout`` fault: the client should give up first)."""
        await asyncio.sleep(float(self.config["timeout_seconds"]))


def sandbox_state(request: Request) -> SandboxState:
    """The :class:`SandboxState` of the app serving ``request``."""
    return request.app.state.sandbox


def origin(request: Request) -> str:
    """The sandbox origin as the client sees it (from the Host header), without a trailing slash."""
    return str(request.base_url).rstrip("/")


async def slow_response(state: SandboxState, response: Response) -> Response:
    """Return ``response`` after the ``timeout`` fault's sleep (the work is already done)."""
    await state.fault_timeout()
    return response


class ApiError(Exception):
    """An emulated service's API error; each service's subclass renders its own wire format."""

    def response(self) -> Response:
        """The error as an HTTP response."""
        raise NotImplementedError


Prepared = TypeVar("Prepared")


def api_endpoint(
    service: str,
    operation: str | None,
    prepare: Callable[[Request], Awaitable[Prepared]],
    handler: Callable[[Request, SandboxState, Prepared], Awaitable[Response]],
    fault_error: Callable[[str], ApiError],
    counter: str | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """One sandbox API endpoint, in the order every emulated service answers.

    1. the configured latency of ``service``;
    2. ``prepare(request)``: authentication and body parsing (their errors come before any fault);
    3. the fault switch of ``operation`` (None: no fault switch): ``500``/``reject`` raise
       ``fault_error("500" | "reject")``, ``timeout`` does the work and delays the answer by ``timeout_seconds``;
    4. ``handler(request, state, prepared)``.

    An :class:`ApiError` raised by any step is answered with its ``response()``. Every request is counted first,
    under ``counter`` or else ``operation`` (``GET /_sandbox/api-calls``).
    """
    name = counter or operation or service

    async def endpoint(request: Request) -> Response:
        state = sandbox_state(request)
        state.api_calls[name] = state.api_calls.get(name, 0) + 1
        await state.latency(service)
        try:
            prepared = await prepare(request)
            fault = state.fault(operation) if operation else None
            if fault in ("500", "reject"):
                raise fault_error(fault)
            response = await handler(request, state, prepared)
        except ApiError as error:
            return error.response()
        return await slow_response(state, response) if fault == "timeout" else response

    endpoint.__doc__ = handler.__doc__
    return endpoint
