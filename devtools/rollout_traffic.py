"""The rollout drill's traffic through the ingress: customers (the locust customer flow, in asyncio) and probes.

A customer repeats the flow of ``loadtests/locustfile.py::CustomerUser``: scan the QR (``GET /v1/pay`` → 302),
open the status page, read the status JSON, tap Pay (``POST /v1/initiate-payment``; the sandbox auto-pays and
notifies us through the ingress), then poll the status JSON until the drink is being made. A probe client sends
``GET /health`` and ``GET /livez`` on a new connection each time, as an external monitor would (``/readyz``
answers 503 on purpose while a pod drains; the drill reads it at each pod directly, as the kubelet does).

Every request is counted in a :class:`devtools.drill.Tally` by ``(phase, route)`` — ``ramp`` (the first
seconds, while clients connect and fresh workers warm up), ``before`` / ``rollout`` / ``after`` the rollout —
with the drill's own outcome rules (completed; refused before sending; lost: sent without a usable answer, or a
5xx). A request whose reused keep-alive connection closed before any answer byte (nginx retiring a worker after
a reload) is resent once, as browsers do (RFC 9112 §9.3.1; the shutdown drill does the same for its GETs), and
counted as ``retried_after_reset``.
Completions are also bucketed per second for the throughput dip.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from devtools.drill import Tally, classify

PHASES = ("ramp", "before", "rollout", "after")
DONE = {"make_pending", "successful"}
DEAD_ENDS = {"not_paid", "failed", "make_failed", "manual_make", "refunded"}


class Traffic:
    """Customers and probes against ``base_url`` until ``stop()``; ``phase`` is set by the rollout."""

    def __init__(self, base_url: str, qr_link: str, *, customers: int, probes: int, poll_s: float = 0.25) -> None:
        self.base_url = base_url
        parts = urlsplit(qr_link)
        self.qr_path, self.qr_query = parts.path, dict(parse_qsl(parts.query))
        self.customers = customers
        self.probes = probes
        self.poll_s = poll_s
        self.phase = "ramp"
        self.tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
        self.per_second: Counter[int] = Counter()  # completed requests by whole second since start
        self.flows: Counter[str] = Counter()  # completed / failed: <why>
        self.lost: list[dict[str, Any]] = []  # the first 20 lost requests, in detail
        self._t0 = time.monotonic()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # --- one request ------------------------------------------------------------------------------------------
    async def _send(
        self, client: httpx.AsyncClient, method: str, url: str, route: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Send and count; the response when it completed (status < 500), else None."""
        phase, started = self.phase, time.monotonic()
        try:
            try:
                response = await client.request(method, url, **kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # The reused keep-alive connection closed before any answer byte: an nginx worker retiring after a
                # reload closes its idle client connections, and a request can cross the close. nginx never read
                # it (it answers 502, never silence, once it forwarded a request), so clients resend it once, as
                # browsers do for a reused connection (RFC 9112 §9.3.1); counted, by route and phase.
                self.tallies[(phase, route)].retried[type(exc).__name__] += 1
                response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            outcome, kind = classify(exc)
            self.tallies[(phase, route)].record(outcome, kind=kind)
            if outcome == "lost":
                self._note_lost(started, phase, route, kind, None)
            return None
        self.tallies[(phase, route)].record("completed", code=response.status_code, latency=time.monotonic() - started)
        if response.status_code >= 500:
            self._note_lost(started, phase, route, f"HTTP {response.status_code}", response)
            return None
        self.per_second[int(time.monotonic() - self._t0)] += 1
        return response

    def _note_lost(self, started: float, phase: str, route: str, kind: str, response: httpx.Response | None) -> None:
        """Keep the first lost requests' details for the report: when, what, which pod answered, what it said."""
        if len(self.lost) < 20:
            detail = {"at_s": round(started - self._t0, 3), "phase": phase, "route": route, "kind": kind}
            if response is not None:
                detail.update(pod=response.headers.get("x-upstream"), body=response.text[:200])
            self.lost.append(detail)

    # --- customers --------------------------------------------------------------------------------------------
    def _scan_url(self) -> str:
        query = dict(self.qr_query, uuid="rollout" + secrets.token_hex(10), random=secrets.token_hex(3))
        return f"{self.qr_path}?{urlencode(query)}"

    async def _flow(self, client: httpx.AsyncClient) -> str:
        """One purchase; "completed" or why it stopped (a lost request ends the flow, as a customer would retry)."""
        scan = await self._send(client, "GET", self._scan_url(), "GET /v1/pay")
        if scan is None or scan.status_code != 302 or "order_id=" not in scan.headers.get("location", ""):
            return "failed: scan"
        order_id = scan.headers["location"].split("order_id=", 1)[1]
        page = await self._send(client, "GET", f"/v1/order-status-page?order_id={order_id}", "GET status page")
        if page is None or page.status_code != 200:
            return "failed: status page"
        await asyncio.sleep(secrets.randbelow(300) / 1000)  # the customer reads the page, then taps Pay
        pay = await self._send(
            client, "POST", "/v1/initiate-payment", "POST /v1/initiate-payment", json={"order_id": order_id}
        )
        if pay is None or pay.status_code != 200:
            return "failed: initiate-payment"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll_s)
            status = await self._send(client, "GET", f"/v1/order-status/{order_id}", "GET /v1/order-status/[id]")
            if status is None or status.status_code != 200:
                return "failed: status JSON"
            state = status.json().get("status")
            if state in DONE:
                return "completed"
            if state in DEAD_ENDS:
                return f"failed: ended {state}"
        return "failed: not paid within 30 s"

    async def _customer(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(40, connect=3)) as client:
            while not self._stopping.is_set():
                self.flows[await self._flow(client)] += 1

    # --- probes -----------------------------------------------------------------------------------------------
    async def _probe(self) -> None:
        headers = {"Connection": "close", "User-Agent": "kube-probe/1.31"}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5, headers=headers) as client:
            while not self._stopping.is_set():
                for path in ("/health", "/livez"):
                    await self._send(client, "GET", path, f"GET {path}")
                await asyncio.sleep(0.1)

    # --- control ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the clients on the running event loop."""
        self._t0 = time.monotonic()
        self._tasks = [asyncio.create_task(self._customer()) for _ in range(self.customers)]
        self._tasks += [asyncio.create_task(self._probe()) for _ in range(self.probes)]

    def seconds(self) -> float:
        """Seconds since ``start``."""
        return time.monotonic() - self._t0

    async def stop(self, *, finish_s: float = 35.0) -> None:
        """Let every customer finish the flow in progress (up to ``finish_s``), then cancel what is left."""
        self._stopping.set()
        _done, pending = await asyncio.wait(self._tasks, timeout=finish_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.flows.update({"unfinished at the end": len(pending)} if pending else {})

    def summary(self, phase_seconds: dict[str, tuple[float, float]]) -> dict[str, Any]:
        """Counts by phase and route, totals, and throughput per phase; ``phase_seconds`` = {phase: (start, end)}
        in seconds since start."""
        by_phase: dict[str, dict[str, Any]] = {}
        for phase in PHASES:
            routes = {route: t for (p, route), t in self.tallies.items() if p == phase}
            merged = Tally()
            for t in routes.values():
                merged.sent += t.sent
                merged.completed += t.completed
                merged.refused += t.refused
                merged.lost += t.lost
                merged.codes.update(t.codes)
                merged.lost_kinds.update(t.lost_kinds)
                merged.latencies += t.latencies
                merged.retried.update(t.retried)
            start, end = phase_seconds.get(phase, (0.0, 0.0))
            # Whole seconds inside the phase only: a partial first or last second is no dip.
            seconds = [self.per_second.get(s, 0) for s in range(math.ceil(start), int(end))]
            by_phase[phase] = {
                **merged.summary(),
                "seconds": round(end - start, 1),
                "rps_mean": round(sum(seconds) / len(seconds), 1) if seconds else None,
                "rps_min_1s": min(seconds) if seconds else None,
                "routes": {route: t.summary() for route, t in sorted(routes.items())},
            }
        return {
            "phases": by_phase,
            "flows": dict(self.flows),
            "lost_requests": self.lost,
            "per_second": dict(sorted(self.per_second.items())),
        }
