"""Customer-flow steps over real HTTP, shared by the integration tests (and usable from a shell)."""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from coffee_payment.devices.demo import DEMO_DEVICES, DemoDevice
from devtools.launch import wait_until

DEVICES: dict[str, DemoDevice] = {demo.scenario: demo for demo in DEMO_DEVICES}


def qr_path(provider: str, **overrides: Any) -> str:
    """A QR link path for the demo device of ``provider`` with a fresh machine ``uuid``."""
    demo = DEVICES[provider]
    params = {
        "deviceUuid": demo.device_uuid,
        "drinkNo": demo.drink_no,
        "drinkName": demo.drink_name,
        "size": "1",
        "uuid": "it" + secrets.token_hex(10),
        "ts": "1764412800",
        "random": "k3J9qL",
        "salt": secrets.token_hex(8),
    }
    params.update({k: v for k, v in overrides.items()})
    return "/v1/pay?" + urlencode({k: v for k, v in params.items() if v is not None})


def scan(app: httpx.Client, provider: str, **overrides: Any) -> str:
    """Open a QR link; returns the order id from the redirect to the status page. Asserts the 302."""
    response = app.get(qr_path(provider, **overrides))
    assert response.status_code == 302, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith("/v1/order-status-page?order_id=")
    return location.split("order_id=", 1)[1]


def status(app: httpx.Client, order_id: str) -> dict[str, Any]:
    response = app.get(f"/v1/order-status/{order_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_status(app: httpx.Client, order_id: str, expected: str, *, timeout: float = 15) -> dict[str, Any]:
    """Poll the status JSON (like the page does) until ``expected``; fails with the last status seen."""
    seen: list[dict[str, Any]] = []

    def reached() -> dict[str, Any] | None:
        seen.append(status(app, order_id))
        return seen[-1] if seen[-1]["status"] == expected else None

    try:
        return wait_until(reached, timeout=timeout, interval=0.2)
    except TimeoutError:
        raise AssertionError(f"order {order_id}: {seen[-1]['status']} (expected {expected})") from None


def initiate(app: httpx.Client, order_id: str) -> str:
    """Tap Pay: returns the provider's confirmation URL."""
    response = app.post("/v1/initiate-payment", json={"order_id": order_id})
    assert response.status_code == 200, response.text
    return response.json()["redirect_url"]


def checkout(confirmation_url: str, action: str) -> httpx.Response:
    """Choose pay/decline on the sandbox checkout page (form POST to the page's own URL)."""
    page = httpx.get(confirmation_url, timeout=10)
    assert page.status_code == 200 and 'value="pay"' in page.text
    return httpx.post(confirmation_url, data={"action": action}, timeout=10)


def makes_for(sandbox: httpx.Client, machine_uuid: str) -> list[dict[str, Any]]:
    """Make commands the sandbox Tmetr received for one machine order uuid."""
    return [m for m in sandbox.get("/_sandbox/tmetr/makes").json() if m["orderUuid"] == machine_uuid]


def scan_with_uuid(app: httpx.Client, provider: str, **overrides: Any) -> tuple[str, str]:
    """Scan with a known machine uuid; returns (order_id, machine_uuid)."""
    machine_uuid = overrides.pop("uuid", None) or "it" + secrets.token_hex(10)
    return scan(app, provider, uuid=machine_uuid, **overrides), machine_uuid


def provider_payments(sandbox: httpx.Client, provider: str, order_id: str) -> list[dict[str, Any]]:
    """Payments the sandbox provider holds for one of our orders."""
    data = sandbox.get("/_sandbox/payments").json()[provider]
    if provider == "yookassa":
        return [p for p in data if (p.get("metadata") or {}).get("order_id") == order_id]
    return [p for p in data if order_id in (p.get("description") or p.get("Description") or "")]


def wait_deliveries(sandbox: httpx.Client, provider: str, count: int, *, timeout: float = 15) -> list[dict[str, Any]]:
    """Wait until the sandbox has finished at least ``count`` notification deliveries for ``provider``."""

    seen: list[list[dict[str, Any]]] = []

    def finished() -> list[dict[str, Any]] | None:
        seen.append([d for d in sandbox.get("/_sandbox/deliveries").json() if d["provider"] == provider])
        return seen[-1] if len(seen[-1]) >= count else None

    try:
        return wait_until(finished, timeout=timeout, interval=0.1)
    except TimeoutError:
        raise AssertionError(f"{len(seen[-1])} deliveries, expected {count}") from None


def wait_makes(
    sandbox: httpx.Client, machine_uuid: str, count: int = 1, *, timeout: float = 10
) -> list[dict[str, Any]]:
    """Make commands for ``machine_uuid`` once ``count`` have arrived, re-read after a short settle so that a
    duplicate sent just behind the first one would be seen too. The order shows ``make_pending`` as soon as the
    winning transaction commits; the command itself is sent right after (docs/domain.md §5 rule 4), so it may
    trail the status."""
    with contextlib.suppress(TimeoutError):  # fewer than ``count``: the caller's assertion shows how many
        wait_until(lambda: len(makes_for(sandbox, machine_uuid)) >= count, timeout=timeout)
    time.sleep(0.3)
    return makes_for(sandbox, machine_uuid)


MAKE_OUTCOMES = ("accepted", "failed", "unknown", "expired", "canceled")


def wait_make_outcome(app: httpx.Client, order_id: str, *, timeout: float = 20) -> dict[str, Any]:
    """Poll the status JSON until the order's make has a recorded outcome (``make_state`` accepted, failed,
    unknown, expired or canceled); tests count makes only after this, so a late duplicate cannot slip past."""
    seen: list[dict[str, Any]] = []

    def recorded() -> dict[str, Any] | None:
        seen.append(status(app, order_id))
        return seen[-1] if seen[-1].get("make_state") in MAKE_OUTCOMES else None

    try:
        return wait_until(recorded, timeout=timeout, interval=0.1)
    except TimeoutError:
        raise AssertionError(f"order {order_id}: make_state {seen[-1].get('make_state')!r}") from None


def make_attempts_for(sandbox: httpx.Client, machine_uuid: str) -> list[dict[str, Any]]:
    """Every make request the sandbox Tmetr saw for ``machine_uuid``, with arrival and answer times."""
    return [
        a
        for a in sandbox.get("/_sandbox/tmetr/make-attempts").json()
        if isinstance(a.get("body"), list) and any(c.get("orderUuid") == machine_uuid for c in a["body"])
    ]


def wait_make_in_flight(sandbox: httpx.Client, machine_uuid: str, *, timeout: float = 15) -> dict[str, Any]:
    """Wait until a make for ``machine_uuid`` has reached Tmetr and is not answered yet."""

    def in_flight() -> dict[str, Any] | None:
        return next((a for a in make_attempts_for(sandbox, machine_uuid) if a["answered_at"] is None), None)

    try:
        return wait_until(in_flight, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"no make in flight for {machine_uuid}") from None
