"""The drill's dispense accounting (issue 9): paid orders whose make command is in flight when the event lands.

Before the event the drill pays ``count`` fresh orders through the sandbox (QR scan → Pay → checkout "pay"); the
sandbox Tmetr answers each make after ``latency`` seconds, so the makes are in flight at the signal. After the run
every order is read from the database: a make with a recorded outcome (``accepted``/``failed``) or an explicit
state for staff (``unknown``, ``expired``) is accounted for; one still ``queued``/``sending`` once the send budget
has passed is swept (``sweep_dispenses``, as the CronJob would) and counted as *settled by the sweeper* (sent, or
flagged for staff); one that is still neither afterwards is **lost** — a paid order silently unmade. More than
one make for an order at the sandbox Tmetr is a **double** dispense. Either fails the drill.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
import uuid
from collections import Counter
from contextlib import closing
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import psycopg

from devtools.dbtemplate import database_of
from devtools.stack import Stack, run_manage

SETTLED = ("accepted", "failed", "unknown", "expired", "canceled")
# The drill's stack bounds the Tmetr call (connect + read) and the sweep grace at these (seconds).
TMETR_CONNECT_S, TMETR_READ_S, SWEEP_GRACE_S = 2.0, 5.0, 1.0
STUCK_AFTER_S = TMETR_CONNECT_S + TMETR_READ_S + 1.0 + SWEEP_GRACE_S
STACK_ENV = {
    "TMETR_CONNECT_TIMEOUT_S": str(TMETR_CONNECT_S),
    "TMETR_READ_TIMEOUT_S": str(TMETR_READ_S),
    "DISPENSE_SWEEP_GRACE_S": str(SWEEP_GRACE_S),
}
_STATES_SCRIPT = (
    "import json; from coffee_payment.orders.models import Order;"
    "print(json.dumps({str(o.id): [o.status, o.make_state] for o in Order.objects.filter(pk__in={ids})}))"
)

# Every order that was paid (a make owed, or paid and not yet queued), as ``{order id: machine uuid}``; a late
# payment (manual_make, no make owed) is an explicit state for staff.
_PAID_SCRIPT = (
    "import json; from coffee_payment.orders.models import Order;"
    "print(json.dumps({str(o.id): o.machine_uuid for o in Order.objects.exclude(make_state='', status__in="
    "['created', 'pending', 'not_paid', 'failed', 'manual_make'])}))"
)
# The same two reads in SQL, straight from the stack's SQLite file or PostgreSQL database (no Django process to start:
# ~2 s of a drill each); other databases go through ``manage.py shell`` and the scripts above.
_PAID_SQL = (
    "SELECT id, machine_uuid FROM orders_order WHERE NOT (make_state = '' AND status IN "
    "('created', 'pending', 'not_paid', 'failed', 'manual_make'))"
)


def _orders_query(env: dict[str, str], sql: str, ids: list[str] | None) -> list[tuple[str, ...]] | None:
    """Rows of ``sql`` on the orders table of the stack with ``env``, the order id (first column) as Django prints a
    UUID; ``{ids}`` in ``sql`` is bound to ``ids``. None when the database is neither SQLite nor PostgreSQL."""
    kind, where = database_of(env)
    if kind == "sqlite":  # Django keeps a UUID primary key as 32 hex digits in SQLite
        marks = ", ".join("?" * len(ids or []))
        with closing(sqlite3.connect(where, timeout=20)) as db:
            rows = db.execute(sql.format(ids=marks), [uuid.UUID(i).hex for i in ids or []]).fetchall()
        return [(str(uuid.UUID(pk)), *rest) for pk, *rest in rows]
    if kind == "postgres":
        with psycopg.connect(where, connect_timeout=5) as db:
            rows = db.execute(
                sql.replace("IN ({ids})", "= ANY(%s::uuid[])"), (ids,) if ids is not None else ()
            ).fetchall()
        return [(str(pk), *rest) for pk, *rest in rows]
    return None


class DispenseProbe:
    """Paid orders launched just before the drill's event, and their accounting afterwards."""

    def __init__(self, stack: Stack, *, count: int, latency: float) -> None:
        self.stack = stack
        self.count = count
        self.latency = latency
        self.orders: dict[str, str] = {}  # order id -> machine uuid
        self.launch_error: str | None = None

    def _qr_link(self) -> str:
        """The first demo device's QR link with a fresh machine uuid (a new order)."""
        parts = urlsplit(self.stack.qr_links[0])
        query = dict(parse_qsl(parts.query))
        query["uuid"] = "drill" + secrets.token_hex(8)
        return f"{self.stack.base_url}{parts.path}?{urlencode(query)}"

    async def _pay_one(self, client: httpx.AsyncClient) -> None:
        link = self._qr_link()
        scan = await _once_more(client.get, link)
        order_id = scan.headers.get("location", "").split("order_id=")[-1]
        if scan.status_code != 302 or not order_id:
            raise RuntimeError(f"drill: the QR scan answered {scan.status_code}: {scan.text[:200]}")
        # Initiate is double-tap safe and the checkout answers a repeated "pay" idempotently: one retry each.
        start = await _once_more(client.post, f"{self.stack.base_url}/v1/initiate-payment", json={"order_id": order_id})
        start.raise_for_status()
        paid = await _once_more(client.post, start.json()["redirect_url"], data={"action": "pay"})
        if paid.status_code >= 400 and paid.status_code != 409:  # 409: already paid by the first try
            raise RuntimeError(f"drill: the sandbox checkout answered {paid.status_code}")
        self.orders[order_id] = dict(parse_qsl(urlsplit(link).query))["uuid"]

    async def launch(self, *, wait_s: float) -> None:
        """Pay the orders; return once their makes reached Tmetr (or after ``wait_s``: then they are queued).
        A failure to pay them is kept in ``launch_error`` (the drill fails with it), not raised."""
        if not self.count:
            return
        try:
            await self._launch(wait_s)
        except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
            self.launch_error = f"{type(exc).__name__}: {exc}"

    async def _launch(self, wait_s: float) -> None:
        async with httpx.AsyncClient(base_url=self.stack.sandbox_url, timeout=30) as sandbox:
            await sandbox.post("/_sandbox/config", json={"latency_ms": {"tmetr": self.latency * 1000}})
            async with httpx.AsyncClient(timeout=30) as client:
                await asyncio.gather(*(self._pay_one(client) for _ in range(self.count)))
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and len(await self._arrived(sandbox)) < self.count:
                await asyncio.sleep(0.02)

    def adopt_paid_orders(self) -> int:
        """Account for every paid order in the database (the rollout drill's customers paid them), not only the
        ones ``launch`` paid; returns how many."""
        rows = _orders_query(self.stack.env, _PAID_SQL, None)
        if rows is None:
            out = run_manage("shell", "--no-imports", "-c", _PAID_SCRIPT, env=self.stack.env)
            self.orders.update(json.loads(out.strip().splitlines()[-1]))
        else:
            self.orders.update(dict(rows))
        return len(self.orders)

    async def _arrived(self, sandbox: httpx.AsyncClient) -> set[str]:
        attempts = (await sandbox.get("/_sandbox/tmetr/make-attempts")).json()
        uuids = set(self.orders.values())
        return {c["orderUuid"] for a in attempts for c in (a.get("body") or []) if c.get("orderUuid") in uuids}

    def _states(self) -> dict[str, list[str]]:
        """``{order id: [status, make_state]}`` of the probe's orders."""
        ids = list(self.orders)
        rows = _orders_query(self.stack.env, "SELECT id, status, make_state FROM orders_order WHERE id IN ({ids})", ids)
        if rows is None:
            code = _STATES_SCRIPT.replace("{ids}", repr(ids))
            out = run_manage("shell", "--no-imports", "-c", code, env=self.stack.env)
            return json.loads(out.strip().splitlines()[-1])
        return {pk: [status, make] for pk, status, make in rows}

    def account(self, *, event_at: float) -> dict[str, Any]:
        """Read every order's final state (sweeping once past the send budget if needed) and the makes Tmetr got.
        ``event_at`` is the ``time.monotonic()`` of the event."""
        if not self.orders:
            return {"paid_in_flight": 0, "launch_error": self.launch_error}
        states = self._states()
        swept: list[str] = []
        if any(make not in SETTLED for _status, make in states.values()):
            time.sleep(max(0.0, event_at + STUCK_AFTER_S + 0.5 - time.monotonic()))
            run_manage("sweep_dispenses", env=self.stack.env)
            after = self._states()
            swept = [o for o in after if states[o][1] not in SETTLED and after[o][1] in SETTLED]
            states = after
        makes = httpx.get(f"{self.stack.sandbox_url}/_sandbox/tmetr/makes", timeout=10).json()
        per_order = {o: sum(m.get("orderUuid") == u for m in makes) for o, u in self.orders.items()}
        lost = sorted(o for o, (_s, make) in states.items() if make not in SETTLED)
        double = sorted(o for o, n in per_order.items() if n > 1)
        return {
            "launch_error": self.launch_error,
            "paid_in_flight": len(self.orders),
            "make_states": dict(sorted(Counter(make or "none" for _s, make in states.values()).items())),
            "settled_by_sweeper": len(swept),
            "lost": lost,
            "double": double,
            "orders": {o: {"status": s, "make_state": m, "makes": per_order[o]} for o, (s, m) in states.items()},
        }


async def _once_more(send: Any, url: str, **kwargs: Any) -> httpx.Response:
    """Send; on a connection closed before any answer (a keep-alive race), send once more on a new one."""
    try:
        return await send(url, **kwargs)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return await send(url, **kwargs)


def judge(summary: dict[str, Any]) -> list[str]:
    """The drill's reasons to fail on dispenses (empty when every paid order was accounted for)."""
    reasons = []
    if summary.get("launch_error"):
        reasons.append(f"the drill could not pay its orders: {summary['launch_error']}")
    if summary.get("lost"):
        reasons.append(f"{len(summary['lost'])} paid order(s) silently unmade: {summary['lost']}")
    if summary.get("double"):
        reasons.append(f"{len(summary['double'])} order(s) got more than one make: {summary['double']}")
    return reasons


def render_row(summary: dict[str, Any] | None) -> str:
    """The report table's "dispenses" row."""
    if not summary or not summary.get("paid_in_flight"):
        return "not measured (needs the drill's own server)"
    return (
        f"{summary['paid_in_flight']} paid with the make in flight: {summary['make_states']}, "
        f"{summary['settled_by_sweeper']} settled by the sweeper (sent, or flagged for staff), "
        f"{len(summary['lost'])} silently lost, {len(summary['double'])} double"
    )
