"""Paid means made (issue 9), over real HTTP with real gunicorn workers and the sandbox, SQLite and PostgreSQL:
the make command survives a caller that goes away, a worker that dies, a graceful stop; provider state is verified
before any dispense; webhooks, polls and the reconciler reach one decision. Every count of makes waits for the
make's recorded outcome first (``wait_make_outcome``), so a late duplicate fails the test."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import httpx
import pytest

from coffee_payment.payments.providers.tbank_token import tbank_token
from coffee_payment.sandbox import defaults as sandbox_defaults
from devtools.pg import temporary_database
from devtools.processes import child_pids, wait_until
from devtools.stack import PYTHON, ROOT, Stack, StackConfig, run_manage, wait_http_ok
from tests.integration.conftest import FAST_TIMEOUTS
from tests.integration.flow import (
    checkout,
    initiate,
    make_attempts_for,
    makes_for,
    provider_payments,
    scan_with_uuid,
    status,
    wait_deliveries,
    wait_make_in_flight,
    wait_make_outcome,
    wait_status,
)

pytestmark = pytest.mark.timeout(120)

# Tmetr answers the make after 1.5 s: inside the test stack's 2 s read timeout, after the callers below gave up.
SLOW_TMETR = {"latency_ms": {"tmetr": 1500}}
GIVE_UP_S = 0.5
PROVIDERS = ["yookassa", "tbank"]


def _config(sandbox: httpx.Client, **config) -> None:
    sandbox.post("/_sandbox/config", json=config).raise_for_status()


def _one_make(sandbox: httpx.Client, app: httpx.Client, order_id: str, machine_uuid: str) -> dict:
    body = wait_make_outcome(app, order_id)
    assert len(makes_for(sandbox, machine_uuid)) == 1
    assert len(make_attempts_for(sandbox, machine_uuid)) == 1
    return body


def _sweep(stack: Stack) -> subprocess.CompletedProcess:
    """``manage.py sweep_dispenses`` against the stack's database, stdout and stderr captured."""
    return subprocess.run(
        [PYTHON, "manage.py", "sweep_dispenses"], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60
    )


def _kill_workers(stack: Stack) -> None:
    for pid in child_pids(stack.server.pid):
        os.kill(pid, signal.SIGKILL)
    wait_http_ok(f"{stack.base_url}/health", timeout=60, proc=stack.server)


# --- a caller that goes away ---------------------------------------------------------------------------------


@pytest.mark.serial  # Tmetr's 1.5 s inside the 2 s read timeout: a busy neighbour would eat the margin
@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_poll_abandoned_while_tmetr_is_slow_still_makes_once(stack, app, sandbox, provider):
    """The phone closes the page while its status poll is settling the payment and Tmetr is slow."""
    _config(sandbox, notifications={"hold": True})  # the provider's notification never comes: the poll settles
    order_id, machine_uuid = scan_with_uuid(app, provider)
    _config(sandbox, **SLOW_TMETR)
    checkout(initiate(app, order_id), "pay")
    # Poll like the page, hanging up after GIVE_UP_S: the poll that settles the payment waits for the make (1.5 s),
    # so it is certainly abandoned; polls before it may time out too on a busy machine (the page polls on).
    deadline = time.monotonic() + 30
    while not [a for a in make_attempts_for(sandbox, machine_uuid) if a["answered_at"] is None]:
        assert time.monotonic() < deadline, "no poll settled the payment"
        try:
            httpx.get(f"{stack.base_url}/v1/order-status/{order_id}", timeout=GIVE_UP_S)
        except httpx.TimeoutException:
            pass
    body = _one_make(sandbox, app, order_id, machine_uuid)
    assert (body["status"], body["make_state"]) == ("make_pending", "accepted")
    sandbox.post("/_sandbox/notifications/release", json={"order": "oldest_first"}).raise_for_status()
    assert len(makes_for(sandbox, machine_uuid)) == 1


@pytest.mark.serial
@pytest.mark.parametrize("provider", PROVIDERS)
def test_notifier_that_gives_up_still_gets_one_make(stack, app, sandbox, provider):
    order_id, machine_uuid = scan_with_uuid(app, provider)
    _config(sandbox, notifications={"give_up_ms": GIVE_UP_S * 1000}, **SLOW_TMETR)
    checkout(initiate(app, order_id), "pay")
    body = _one_make(sandbox, app, order_id, machine_uuid)
    assert (body["status"], body["make_state"]) == ("make_pending", "accepted")
    deliveries = wait_deliveries(sandbox, provider, 1)
    assert any("Timeout" in (d["error"] or "") for d in deliveries), deliveries


# --- a worker that dies --------------------------------------------------------------------------------------


@pytest.mark.serial
def test_worker_killed_mid_make_is_flagged_unknown_and_never_resent(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    _config(sandbox, **SLOW_TMETR)
    checkout(initiate(app, order_id), "pay")
    wait_make_in_flight(sandbox, machine_uuid)
    _kill_workers(stack)
    assert status(app, order_id)["make_state"] == "sending"

    def flagged() -> subprocess.CompletedProcess | None:
        done = _sweep(stack)
        assert done.returncode == 0, done.stderr
        return done if "unknown" in done.stdout and order_id in done.stdout else None

    swept = wait_until(flagged, timeout=30, interval=0.5, what="the sweeper flags the make")
    assert "ERROR" in swept.stderr and "dispense.outcome_unknown" in swept.stderr and order_id in swept.stderr
    body = wait_make_outcome(app, order_id)
    assert (body["status"], body["make_state"]) == ("make_unknown", "unknown")
    assert "1 unknown" not in _sweep(stack).stdout  # flagged once
    wait_until(lambda: make_attempts_for(sandbox, machine_uuid)[0]["answered_at"], timeout=10)
    assert len(make_attempts_for(sandbox, machine_uuid)) == 1, "an unknown outcome is never resent"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def dying_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose workers SIGKILL themselves between the commit of make_pending and the make command."""
    var_dir: Path = tmp_path_factory.mktemp(f"var-dying-{request.param}")
    env = {**FAST_TIMEOUTS, "SERVING_TEST_FAULTS": "die_before_make"}
    with temporary_database("coffee_die", migrated=True) if request.param == "postgres" else nullcontext() as url:
        if url:
            env["DATABASE_URL"] = url
        with Stack(StackConfig(mode="prod", var_dir=var_dir, env=env, log_to=var_dir / "logs")) as running:
            yield running


# Not serial: no verdict here depends on timing. The worker dies at a fixed point (the fault hook), every wait is a
# condition wait with a generous bound, and the sweeper runs when the test calls it; a busy neighbour only delays.
def test_process_dying_between_commit_and_send_is_finished_by_the_sweeper(dying_stack):
    stack = dying_stack
    with httpx.Client(base_url=stack.base_url, timeout=30) as app, httpx.Client(base_url=stack.sandbox_url) as sandbox:
        order_id, machine_uuid = scan_with_uuid(app, "yookassa")
        checkout(initiate(app, order_id), "pay")
        deliveries = wait_deliveries(sandbox, "yookassa", 1)
        assert deliveries[0]["error"], "the worker should have died handling the notification"
        wait_http_ok(f"{stack.base_url}/health", timeout=60, proc=stack.server)
        body = status(app, order_id)
        assert (body["status"], body["make_state"]) == ("make_pending", "queued")
        assert make_attempts_for(sandbox, machine_uuid) == []
        swept = wait_until(
            lambda: (out := _sweep(stack).stdout) and "owed make sent" in out and out,
            timeout=30,
            interval=0.5,
            what="the sweeper sends the owed make",
        )
        assert order_id in swept
        body = _one_make(sandbox, app, order_id, machine_uuid)
        assert body["make_state"] == "accepted"
        assert "0 sent" in _sweep(stack).stdout


# --- a graceful stop with a make in flight ---------------------------------------------------------------------


@pytest.fixture
def solo_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """One-worker stack on PostgreSQL (``request.param``: extra env), stopped at the end whatever happened."""
    # Tmetr may take 3 s here: the make outlasts the drain of the connections (1 s idle grace).
    env = {**FAST_TIMEOUTS, "GUNICORN_WORKERS": "1", "TMETR_READ_TIMEOUT_S": "6", **getattr(request, "param", {})}
    with temporary_database("coffee_stop", migrated=True) as url:
        env["DATABASE_URL"] = url
        stack = Stack(StackConfig(mode="prod", var_dir=tmp_path, env=env, log_to=tmp_path / "logs")).start()
        try:
            yield stack
        finally:
            stack.stop()


def _pay_with_make_in_flight(stack: Stack) -> tuple[httpx.Client, httpx.Client, str, str]:
    app = httpx.Client(base_url=stack.base_url, timeout=30)
    sandbox = httpx.Client(base_url=stack.sandbox_url, timeout=30)
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    # The notifier hangs up: the make is left to the background task alone, not to a request still draining.
    _config(sandbox, notifications={"give_up_ms": GIVE_UP_S * 1000}, latency_ms={"tmetr": 3000})
    checkout(initiate(app, order_id), "pay")
    wait_make_in_flight(sandbox, machine_uuid)
    assert wait_deliveries(sandbox, "yookassa", 1)[0]["error"]
    return app, sandbox, order_id, machine_uuid


def _make_state_in_db(stack: Stack, order_id: str) -> str:
    code = (
        "from coffee_payment.orders.models import Order;"
        f"o = Order.objects.get(pk='{order_id}'); print(o.status, o.make_state)"
    )
    return run_manage("shell", "--no-imports", "-c", code, env=stack.env).strip()


@pytest.mark.serial
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_graceful_stop_waits_for_the_make_in_flight(solo_stack, sig):
    app, sandbox, order_id, machine_uuid = _pay_with_make_in_flight(solo_stack)
    solo_stack.server.send_signal(sig)
    assert solo_stack.server.wait(timeout=40) == 0
    assert _make_state_in_db(solo_stack, order_id) == "make_pending accepted"
    assert len(makes_for(sandbox, machine_uuid)) == 1
    log = (solo_stack.config.log_to / "server.log").read_text()
    assert "waiting for 1 in-flight make command(s)" in log


@pytest.mark.serial
@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTTOU], ids=["hup", "ttou-after-ttin"])
def test_hup_or_ttou_to_the_master_waits_for_the_make_in_flight(solo_stack, sig):
    """HUP (new workers, the old ones drained) or TTOU (one worker drained) while a paid order's make is in flight:
    the old worker waits for it; one make, accepted."""
    old_workers = child_pids(solo_stack.server.pid)
    app, sandbox, order_id, machine_uuid = _pay_with_make_in_flight(solo_stack)  # Tmetr answers in 3 s
    if sig == signal.SIGTTOU:  # one worker: TTOU is a no-op, so add one first; TTOU then stops the oldest
        solo_stack.server.send_signal(signal.SIGTTIN)
        wait_until(lambda: len(child_pids(solo_stack.server.pid)) == 2, timeout=2, what="a second worker")
    solo_stack.server.send_signal(sig)
    body = _one_make(sandbox, app, order_id, machine_uuid)
    assert body["make_state"] == "accepted"
    log_path = solo_stack.config.log_to / "server.log"
    wait_until(lambda: "waiting for 1 in-flight make command(s)" in log_path.read_text(), timeout=30, what="drain")
    log = log_path.read_text()
    assert "was sent" not in log and "still running at the deadline" not in log, log
    assert len(makes_for(sandbox, machine_uuid)) == 1
    assert set(child_pids(solo_stack.server.pid)) != set(old_workers)


@pytest.mark.serial
@pytest.mark.parametrize("solo_stack", [{"GUNICORN_MAX_REQUESTS": "12"}], indirect=True)
def test_recycle_waits_for_the_make_in_flight(solo_stack):
    app, sandbox, order_id, machine_uuid = _pay_with_make_in_flight(solo_stack)
    old_workers = child_pids(solo_stack.server.pid)
    for _ in range(15):  # new connections each: the worker reaches max_requests while the make is in flight
        try:
            httpx.get(f"{solo_stack.base_url}/health", timeout=5)
        except httpx.TransportError:
            pass
    body = _one_make(sandbox, app, order_id, machine_uuid)
    assert body["make_state"] == "accepted"
    wait_until(lambda: set(child_pids(solo_stack.server.pid)) - set(old_workers), timeout=30, what="a new worker")
    log = (solo_stack.config.log_to / "server.log").read_text()
    (worker,) = old_workers
    recycle = log.index(f"Worker {worker} shutdown 1/3: stop accepting new connections (cause: max requests")
    waiting = log.index(f"Worker {worker} shutdown 2/3: waiting for 1 in-flight make command(s)")
    accepted = log.index(f"dispense.accepted order={order_id}")
    exiting = log.index(f"Worker exiting (pid: {worker})")
    assert recycle < waiting < accepted < exiting


# --- provider state verified before any dispense ---------------------------------------------------------------


def _signed(payment: dict, status_: str) -> dict:
    body = {
        "TerminalKey": sandbox_defaults.TBANK_TERMINAL_KEY,
        "OrderId": payment["order_id"],
        "Success": True,
        "Status": status_,
        "PaymentId": int(payment["payment_id"]),
        "ErrorCode": "0",
        "Amount": payment["amount"],
        "Pan": "430000******0777",
    }
    body["Token"] = tbank_token(body, sandbox_defaults.TBANK_PASSWORD)
    return body


def _tbank_api(sandbox: httpx.Client, method: str, **fields) -> dict:
    body = {"TerminalKey": sandbox_defaults.TBANK_TERMINAL_KEY, **fields}
    body["Token"] = tbank_token(body, sandbox_defaults.TBANK_PASSWORD)
    return sandbox.post(f"/tbank/v2/{method}", json=body).json()


def test_refund_that_arrives_before_confirmed_wins(stack, app, sandbox):
    """Real arrival order reversed: the bank confirmed then refunded; we hear REFUNDED, CONFIRMED, AUTHORIZED."""
    _config(sandbox, notifications={"hold": True})
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    checkout(initiate(app, order_id), "pay")
    (payment,) = provider_payments(sandbox, "tbank", order_id)
    assert _tbank_api(sandbox, "Cancel", PaymentId=payment["payment_id"])["Status"] == "REFUNDED"
    records = sandbox.post("/_sandbox/notifications/release", json={"order": "newest_first"}).json()
    assert [r["status"] for r in records] == ["REFUNDED", "CONFIRMED", "AUTHORIZED"]
    assert all(r["http_status"] == 200 and r["response_body"] == "OK" for r in records), records
    assert status(app, order_id)["status"] == "refunded"
    assert make_attempts_for(sandbox, machine_uuid) == []


@pytest.mark.parametrize(
    ("bank_status", "ends"),
    [("REFUNDED", "refunded"), ("PARTIAL_REFUNDED", "refunded"), ("CANCELED", "not_paid"), ("REVERSED", "not_paid")],
)
def test_signed_confirmed_is_checked_with_getstate(stack, app, sandbox, bank_status, ends):
    """A correctly signed CONFIRMED, replayed or late, is no proof: GetState says the money went back."""
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    initiate(app, order_id)
    (payment,) = provider_payments(sandbox, "tbank", order_id)
    sandbox.post(f"/_sandbox/payments/tbank/{payment['payment_id']}/status", json={"status": bank_status})
    for sent in (bank_status, "CONFIRMED"):
        response = app.post("/v1/tbank-webhook", json=_signed(payment, sent))
        assert (response.status_code, response.text) == (200, "OK")
    assert status(app, order_id)["status"] == ends
    assert make_attempts_for(sandbox, machine_uuid) == []


def test_confirmed_replayed_after_a_refund_makes_nothing_more(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    checkout(initiate(app, order_id), "pay")
    _one_make(sandbox, app, order_id, machine_uuid)
    (payment,) = provider_payments(sandbox, "tbank", order_id)
    _tbank_api(sandbox, "Cancel", PaymentId=payment["payment_id"])
    wait_status(app, order_id, "refunded")
    response = app.post("/v1/tbank-webhook", json=_signed(payment, "CONFIRMED"))
    assert (response.status_code, response.text) == (200, "OK")
    assert status(app, order_id)["status"] == "refunded"
    assert len(make_attempts_for(sandbox, machine_uuid)) == 1


# --- one decision per provider answer ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_webhook_poll_and_reconcile_racing_make_one_decision(stack, app, sandbox, provider):
    _config(sandbox, notifications={"hold": True, "duplicate": 3})
    order_id, machine_uuid = scan_with_uuid(app, provider)
    checkout(initiate(app, order_id), "pay")
    time.sleep(1.1)  # PAYMENT_REFRESH_INTERVAL_S=1: the status JSON may poll the provider now
    racers = [
        threading.Thread(target=lambda: sandbox.post("/_sandbox/notifications/release", json={})),
        threading.Thread(target=lambda: run_manage("reconcile_payments", "--min-age", "0", env=stack.env)),
        *(threading.Thread(target=lambda: httpx.get(f"{stack.base_url}/v1/order-status/{order_id}")) for _ in range(4)),
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    body = _one_make(sandbox, app, order_id, machine_uuid)
    assert (body["status"], body["make_state"]) == ("make_pending", "accepted")


def test_yookassa_payment_without_our_metadata_settles_through_the_webhook(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    url = initiate(app, order_id)
    (payment,) = provider_payments(sandbox, "yookassa", order_id)
    sandbox.post(f"/_sandbox/payments/yookassa/{payment['id']}/metadata", json={}).raise_for_status()
    checkout(url, "pay")
    body = _one_make(sandbox, app, order_id, machine_uuid)
    assert (body["status"], body["make_state"]) == ("make_pending", "accepted")
    (delivery,) = wait_deliveries(sandbox, "yookassa", 1)[-1:]
    assert delivery["http_status"] == 200


# --- the retry paths where double charges are born ----------------------------------------------------------------


def test_yookassa_create_timeout_then_retry_with_the_same_key_is_one_payment(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    _config(sandbox, faults={"yookassa.create": "timeout"})
    assert app.post("/v1/initiate-payment", json={"order_id": order_id}).status_code == 503
    _config(sandbox, faults={"yookassa.create": None})
    url = initiate(app, order_id)
    assert len(provider_payments(sandbox, "yookassa", order_id)) == 1
    checkout(url, "pay")
    _one_make(sandbox, app, order_id, machine_uuid)


def _tap_pay_ignoring_errors(base_url: str, order_id: str) -> None:
    try:
        httpx.post(f"{base_url}/v1/initiate-payment", json={"order_id": order_id}, timeout=30)
    except httpx.TransportError:
        pass  # the worker holding this request is killed on purpose


def test_claim_takeover_after_its_ttl_reuses_the_attempt_and_its_key(stack, app, sandbox):
    """The worker creating the payment dies after the provider created it: the next tap, past the claim's TTL,
    takes the attempt over and retries with the same idempotency key — still one provider payment."""
    order_id, machine_uuid = scan_with_uuid(app, "yookassa")
    _config(sandbox, faults={"yookassa.create": "timeout"}, timeout_seconds=30)
    tap = threading.Thread(target=_tap_pay_ignoring_errors, args=(stack.base_url, order_id))
    tap.start()
    wait_until(lambda: provider_payments(sandbox, "yookassa", order_id), timeout=15, what="the provider's payment")
    _kill_workers(stack)
    tap.join(timeout=30)
    _config(sandbox, faults={"yookassa.create": None})
    run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from datetime import timedelta; from django.utils import timezone;"
        "from coffee_payment.payments.models import PaymentAttempt as A;"
        f"A.objects.filter(order_id='{order_id}', status='creating')"
        ".update(create_claimed_at=timezone.now() - timedelta(minutes=5))",
        env=stack.env,
    )
    url = initiate(app, order_id)
    assert len(provider_payments(sandbox, "yookassa", order_id)) == 1
    checkout(url, "pay")
    _one_make(sandbox, app, order_id, machine_uuid)


def test_tbank_ambiguous_init_cancels_the_orphan_and_starts_afresh(stack, app, sandbox):
    order_id, machine_uuid = scan_with_uuid(app, "tbank")
    _config(sandbox, faults={"tbank.init": "timeout"})
    assert app.post("/v1/initiate-payment", json={"order_id": order_id}).status_code == 503
    _config(sandbox, faults={"tbank.init": None})
    url = initiate(app, order_id)
    statuses = sorted(p["status"] for p in provider_payments(sandbox, "tbank", order_id))
    assert statuses == ["CANCELED", "NEW"], "the orphan of the ambiguous Init can never be paid"
    checkout(url, "pay")
    _one_make(sandbox, app, order_id, machine_uuid)
