"""Tmetr telemetry client: drink price, device heartbeat, make command (docs/domain.md §2; no public docs).

Budget: connect 3 s, read 5 s (settings). A 401 means the JWT expired (~10 h lifetime): logged at ERROR.
A make command that times out or gets a 5xx has an UNKNOWN outcome (the drink may be made): never resend it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

logger = logging.getLogger(__name__)

SIZE_NAMES = ("SMALL", "MEDIUM", "BIG")  # QR size 0/1/2 → Tmetr drinkSize


class TmetrError(Exception):
    """Base of Tmetr errors; ``detail`` is safe to show in logs."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TmetrUnavailable(TmetrError):
    """Timeout, connection error or 5xx: outcome unknown."""


class TmetrRejected(TmetrError):
    """4xx (other than 401) or an unusable answer (e.g. no price)."""


class TmetrUnauthorized(TmetrError):
    """401: the Tmetr token expired or is wrong. An operator must replace TMETR_TOKEN."""


@dataclass(frozen=True)
class MakeCommand:
    """One make command: ``size`` is the lowercase word from settings; ``price_kopecks`` int."""

    device_id: str
    order_uuid: str
    drink_uuid: str
    size: str
    price_kopecks: int


class TmetrClient:
    """Tmetr API at ``base_url`` (e.g. ``https://tmetr.example/``) with a Bearer ``token``; timeouts in seconds."""

    def __init__(
        self, http: httpx.AsyncClient, *, base_url: str, token: str, connect_timeout: float, read_timeout: float
    ) -> None:
        self._http = http
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)

    async def drink_price(self, *, device_id: str, drink_no: str, size: int) -> int:
        """Price in kopecks of drink ``drink_no`` of size 0/1/2 on ``device_id``. A missing, zero, negative or
        non-integer price raises TmetrRejected: never default a price."""
        data = await self._call(
            "api/ui/v1/static/drink",
            {"deviceId": device_id, "drinkIdAtDevice": drink_no, "drinkSize": SIZE_NAMES[size]},
        )
        price = data.get("price") if isinstance(data, dict) else None
        if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
            raise TmetrRejected(f"Tmetr returned no usable price for drink {drink_no!r} size {size}: {price!r}")
        return price

    async def last_heartbeat(self, *, device_id: str) -> datetime | None:
        """Time of the device's latest heartbeat (UTC), or None when Tmetr has none."""
        data = await self._call(
            "api/ui/v1/stat/heartbeat/recent",
            {"deviceIds": [device_id], "offset": 0, "limit": 1},
            headers={"X-TimeZoneOffset": "0"},
        )
        content = data.get("content") if isinstance(data, dict) else None
        if not content or not isinstance(content, list) or not isinstance(content[0], dict):
            return None
        stamp = content[0].get("heartbeatCreatedAt")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            return None
        if stamp > 1e12:  # milliseconds (docs/domain.md §2)
            stamp = stamp / 1000
        try:
            return datetime.fromtimestamp(stamp, tz=UTC)
        except (OverflowError, OSError, ValueError):  # absurd stamp: no usable heartbeat
            return None

    async def make(self, command: MakeCommand) -> None:
        """Send one make command (a JSON array of one command). Returns on 2xx; raises TmetrRejected on 4xx,
        TmetrUnavailable on timeout/5xx (unknown outcome — do not resend), TmetrUnauthorized on 401."""
        await self._call(
            "api/commander/v1/command/make",
            [
                {
                    "deviceId": command.device_id,
                    "orderUuid": command.order_uuid,
                    "drinkUuid": command.drink_uuid,
                    "size": command.size,
                    "price": command.price_kopecks,
                }
            ],
        )

    async def _call(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.post(
                self._base + path, json=body, headers={**self._headers, **(headers or {})}, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise TmetrUnavailable(f"Tmetr {path}: timeout") from exc
        except httpx.TransportError as exc:
            raise TmetrUnavailable(f"Tmetr {path}: {type(exc).__name__}") from exc
        if response.status_code == 401:
            logger.error("Tmetr answered 401 on %s: TMETR_TOKEN expired or wrong — replace it", path)
            raise TmetrUnauthorized(f"Tmetr {path}: 401 unauthorized")
        if response.status_code >= 500:
            raise TmetrUnavailable(f"Tmetr {path}: HTTP {response.status_code}")
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {"raw": response.text[:200]}
        if response.status_code >= 400:
            message = data.get("errorMessage") if isinstance(data, dict) else None
            raise TmetrRejected(f"Tmetr {path}: HTTP {response.status_code}: {message}")
        if not response.is_success:  # a 3xx (redirects are not followed) is no acceptance: only a 2xx is
            location = response.headers.get("location", "")[:200]
            raise TmetrRejected(f"Tmetr {path}: HTTP {response.status_code} (not 2xx) to {location!r}")
        return data


def tmetr_client() -> TmetrClient:
    """The Tmetr client from settings, on the running loop's shared HTTP client."""
    from django.conf import settings

    from coffee_payment.integrations.http import shared_client

    return TmetrClient(
        shared_client(),
        base_url=settings.TMETR_API_URL,
        token=settings.TMETR_TOKEN,
        connect_timeout=settings.TMETR_CONNECT_TIMEOUT_S,
        read_timeout=settings.TMETR_READ_TIMEOUT_S,
    )
