"""Sandbox configuration: defaults, validation of ``POST /_sandbox/config`` updates and look-ups.

The configuration is a plain JSON-able dict (it is served as-is by ``GET /_sandbox/config``)::

    {
      "webhook_base": "http://127.0.0.1:8000",   # our server; YooKassa notifications go to <base>/v1/yook-pay-webhook
      "latency_ms": 0,                             # or {"yookassa": 0, "tbank": 0, "tmetr": 0}
      "auto_pay": false, "auto_pay_delay_ms": 50,
      "timeout_seconds": 30,                       # how long a "timeout" fault sleeps
      "faults": {"yookassa.create": "timeout" | "500" | "reject", ...},
      "notifications": {"duplicate": 1, "out_of_order": false, "delay_ms": 0,
                        "hold": false,               # hold: queue them until POST /_sandbox/notifications/release
                        "give_up_ms": null},         # the notifier hangs up after this long (a real one gives up)
      "offline_devices": ["device-id", ...],
      "prices": [{"deviceId": .., "drinkIdAtDevice"?: .., "drinkSize"?: .., "price": int | null, "name"?: ..}]
    }
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from coffee_payment.sandbox import defaults

SERVICES = ("yookassa", "tbank", "tmetr")
FAULT_OPERATIONS = (
    "yookassa.create",
    "yookassa.get",
    "tbank.init",
    "tbank.get_state",
    "tbank.check_order",
    "tmetr.price",
    "tmetr.heartbeat",
    "tmetr.make",
)
FAULT_KINDS = ("timeout", "500", "reject")
DRINK_SIZES = ("SMALL", "MEDIUM", "BIG")

DEFAULT_WEBHOOK_BASE = "http://127.0.0.1:8000"
DEFAULT_AUTO_PAY_DELAY_MS = 50
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_NOTIFICATIONS: dict[str, Any] = {
    "duplicate": 1,
    "out_of_order": False,
    "delay_ms": 0,
    "hold": False,
    "give_up_ms": None,
}


class ConfigError(ValueError):
    """An invalid configuration value; the message names the offending key."""


def default_config(
    *,
    webhook_base: str = DEFAULT_WEBHOOK_BASE,
    latency_ms: float = 0,
    auto_pay: bool = False,
) -> dict[str, Any]:
    """Return a fresh configuration dict with every key at its default (the CLI flags override three)."""
    return {
        "webhook_base": webhook_base,
        "latency_ms": latency_ms,
        "auto_pay": auto_pay,
        "auto_pay_delay_ms": DEFAULT_AUTO_PAY_DELAY_MS,
        "timeout_seconds": DEFAULT_TIMEOUT_SECONDS,
        "faults": {},
        "notifications": dict(DEFAULT_NOTIFICATIONS),
        "offline_devices": [],
        "prices": [],
    }


def _number(key: str, value: Any, *, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{key} must be a number >= {minimum}")
    return value


def _latency(value: Any) -> float | dict[str, float]:
    if isinstance(value, Mapping):
        unknown = set(value) - set(SERVICES)
        if unknown:
            raise ConfigError(f"latency_ms: unknown services {sorted(unknown)}")
        return {service: _number(f"latency_ms.{service}", ms) for service, ms in value.items()}
    return _number("latency_ms", value)


def _faults(current: Mapping[str, str], update: Any) -> dict[str, str]:
    if not isinstance(update, Mapping):
        raise ConfigError("faults must be an object {operation: kind|null}")
    merged = dict(current)
    for operation, kind in update.items():
        if operation not in FAULT_OPERATIONS:
            raise ConfigError(f"faults: unknown operation {operation!r}; known: {', '.join(FAULT_OPERATIONS)}")
        if kind is None:
            merged.pop(operation, None)
        elif str(kind) in FAULT_KINDS:
            merged[operation] = str(kind)
        else:
            raise ConfigError(f"faults.{operation}: kind must be one of {FAULT_KINDS} or null")
    return merged


def _notifications(current: Mapping[str, Any], update: Any) -> dict[str, Any]:
    if not isinstance(update, Mapping):
        raise ConfigError("notifications must be an object")
    merged = dict(current)
    for key, value in update.items():
        if key == "duplicate":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
                raise ConfigError("notifications.duplicate must be an integer 1..20")
        elif key in ("out_of_order", "hold"):
            if not isinstance(value, bool):
                raise ConfigError(f"notifications.{key} must be a boolean")
        elif key == "delay_ms":
            _number("notifications.delay_ms", value)
        elif key == "give_up_ms":  # the notifier hangs up after this long (null: its default timeout)
            if value is not None:
                _number("notifications.give_up_ms", value, minimum=1)
        else:
            raise ConfigError(f"notifications: unknown key {key!r}")
        merged[key] = value
    return merged


def _prices(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ConfigError("prices must be a list")
    entries = []
    for index, entry in enumerate(value):
        where = f"prices[{index}]"
        if not isinstance(entry, Mapping) or "deviceId" not in entry or "price" not in entry:
            raise ConfigError(f"{where} must be an object with deviceId and price (int or null)")
        price = entry["price"]
        if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float, str))):
            raise ConfigError(f"{where}.price must be a number, a string or null")
        size = entry.get("drinkSize")
        if size is not None and size not in DRINK_SIZES:
            raise ConfigError(f"{where}.drinkSize must be one of {DRINK_SIZES}")
        entries.append(dict(entry))
    return entries


def merge_config(current: Mapping[str, Any], update: Any) -> dict[str, Any]:
    """Return ``current`` updated with ``update`` (raises :class:`ConfigError`, leaving ``current`` unchanged).

    Top-level keys are replaced, except ``faults`` and ``notifications`` which are merged key by key
    (a fault set to ``null`` is removed).
    """
    if not isinstance(update, Mapping):
        raise ConfigError("config update must be a JSON object")
    merged = copy.deepcopy(dict(current))
    for key, value in update.items():
        if key == "webhook_base":
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise ConfigError("webhook_base must be an http(s) URL")
            merged[key] = value.rstrip("/")
        elif key == "latency_ms":
            merged[key] = _latency(value)
        elif key == "auto_pay":
            if not isinstance(value, bool):
                raise ConfigError("auto_pay must be a boolean")
            merged[key] = value
        elif key in ("auto_pay_delay_ms", "timeout_seconds"):
            merged[key] = _number(key, value)
        elif key == "faults":
            merged[key] = _faults(merged["faults"], value)
        elif key == "notifications":
            merged[key] = _notifications(merged["notifications"], value)
        elif key == "offline_devices":
            if not isinstance(value, list):
                raise ConfigError("offline_devices must be a list of device ids")
            merged[key] = [str(device) for device in value]
        elif key == "prices":
            merged[key] = _prices(value)
        else:
            raise ConfigError(f"unknown config key {key!r}")
    return merged


def latency_seconds(config: Mapping[str, Any], service: str) -> float:
    """Latency to add before answering an API call of ``service`` (``yookassa``/``tbank``/``tmetr``)."""
    value = config.get("latency_ms") or 0
    if isinstance(value, Mapping):
        value = value.get(service, 0)
    return float(value) / 1000


def fault_for(config: Mapping[str, Any], operation: str) -> str | None:
    """The fault kind configured for ``operation`` (e.g. ``"tbank.init"``), or None."""
    return config.get("faults", {}).get(operation)


_MISSING = object()


def price_for(config: Mapping[str, Any], device_id: str, drink_id: str, size: str) -> tuple[Any, str | None]:
    """Return ``(price, name)`` for a drink; ``price`` is ``None`` when configured as null (omit it).

    The most specific matching ``prices`` entry wins (device + drink + size, then device + drink, then device);
    without a match the price is :data:`defaults.DEFAULT_PRICE_KOPECKS`.
    """
    best: Mapping[str, Any] | None = None
    best_rank = -1
    for entry in config.get("prices", []):
        if str(entry["deviceId"]) != device_id:
            continue
        drink = entry.get("drinkIdAtDevice", _MISSING)
        entry_size = entry.get("drinkSize", _MISSING)
        if drink is not _MISSING and str(drink) != drink_id:
            continue
        if entry_size is not _MISSING and entry_size != size:
            continue
        rank = (drink is not _MISSING) * 2 + (entry_size is not _MISSING)
        if rank >= best_rank:  # later entries override earlier ones of the same specificity
            best, best_rank = entry, rank
    if best is None:
        return defaults.DEFAULT_PRICE_KOPECKS, None
    return best["price"], best.get("name")
