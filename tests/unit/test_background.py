"""Background work (the durable make): outlives a cancelled caller, carries only the variables asked for,
and the drain waits for it."""

from __future__ import annotations

import asyncio
import contextvars

from coffee_payment.serving import background
from tests.unit.mock_http import run

CARRIED: contextvars.ContextVar[str] = contextvars.ContextVar("carried", default="-")
LEFT: contextvars.ContextVar[str] = contextvars.ContextVar("left", default="-")


def test_task_sees_carried_variables_only_and_survives_its_caller():
    seen: list[tuple[str, str]] = []
    release = asyncio.Event()

    async def work() -> None:
        await release.wait()
        seen.append((CARRIED.get(), LEFT.get()))

    async def caller() -> None:
        CARRIED.set("request-42")
        LEFT.set("request scoped")
        await asyncio.shield(background.start(work(), name="t", carry=(CARRIED,)))

    async def scenario() -> int:
        call = asyncio.create_task(caller())
        await asyncio.sleep(0.01)
        call.cancel()  # the client went away
        release.set()
        return await background.drain(5)

    assert run(scenario()) == 0
    assert seen == [("request-42", "-")]
    assert background.in_flight() == 0
