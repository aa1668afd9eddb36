"""The customer's checkout page for a sandbox payment: ``/_sandbox/checkout/{yookassa|tbank}/{payment_id}``.

``GET`` shows the amount and a Pay/Decline form; ``POST action=pay|decline`` settles the payment, redirects
(303) to the merchant's return URL and delivers the notifications after the response.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qs

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from coffee_payment.sandbox import tbank, yookassa
from coffee_payment.sandbox.state import Notification, SandboxState, sandbox_state

PATH = "/_sandbox/checkout/{provider}/{payment_id}"
PROVIDER_TITLES = {"yookassa": "ЮKassa", "tbank": "T-Bank"}
# The page speaks the customer's language, as the providers' pages do: Russian unless the browser prefers English.
TEXTS = {
    "ru": {"title": "Оплата", "payment": "Платёж", "status": "статус", "pay": "Оплатить", "decline": "Отклонить"},
    "en": {"title": "Payment", "payment": "Payment", "status": "status", "pay": "Pay", "decline": "Decline"},
}


def page_language(accept_language: str) -> str:
    """``en`` when the first language the browser asks for is English, else ``ru``."""
    first = accept_language.split(",", 1)[0].strip().lower()
    return "en" if first.startswith("en") else "ru"


@dataclass
class CheckoutView:
    """What the page shows about one payment, whatever the provider."""

    provider: str
    payment_id: str
    amount_kopecks: int
    description: str
    status: str
    final: bool


def _view(state: SandboxState, provider: str, payment_id: str) -> CheckoutView | None:
    if provider == "yookassa":
        yk = state.yookassa_payments.get(payment_id)
        if yk is None:
            return None
        return CheckoutView(
            provider,
            payment_id,
            yookassa.kopecks(yk.obj["amount"]),
            yk.obj.get("description", ""),
            yk.obj["status"],
            yk.obj["status"] in yookassa.FINAL_STATUSES,
        )
    if provider == "tbank":
        tb = state.tbank_payments.get(payment_id)
        if tb is None:
            return None
        return CheckoutView(
            provider, payment_id, tb.amount, tb.description, tb.status, tb.status not in tbank.OPEN_STATUSES
        )
    return None


def _page(title: str, body: str, status_code: int = 200, lang: str = "ru") -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem;color:#222}}
.amount{{font-size:2rem;font-weight:600;margin:.5rem 0}}
button{{display:block;width:100%;font-size:1.1rem;padding:.9rem;margin:.6rem 0;border:0;border-radius:.5rem}}
#pay{{background:#1a7f37;color:#fff}} #decline{{background:#eee;color:#a40e26}}
.muted{{color:#666;font-size:.9rem}}
</style></head><body>
{body}
</body></html>"""
    return HTMLResponse(html, status_code=status_code)


def _rubles(kopecks: int) -> str:
    return f"{kopecks // 100}.{kopecks % 100:02d}"


def _render(view: CheckoutView, url: str, status_code: int = 200, note: str = "", lang: str = "ru") -> HTMLResponse:
    text = TEXTS[lang]
    title = f"{text['title']} — {PROVIDER_TITLES[view.provider]} (sandbox)"
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="amount" id="amount">{_rubles(view.amount_kopecks)} ₽</p>',
        f'<p id="description">{escape(view.description)}</p>',
        (
            f'<p class="muted">{text["payment"]} <span id="payment-id">{escape(view.payment_id)}</span>, '
            f'{text["status"]} <span id="status">{escape(view.status)}</span></p>'
        ),
    ]
    if note:
        parts.append(f'<p id="note">{escape(note)}</p>')
    if not view.final:
        parts.append(
            f'<form method="post" action="{escape(url)}">'
            f'<button type="submit" name="action" value="pay" id="pay">{text["pay"]}</button>'
            f'<button type="submit" name="action" value="decline" id="decline">{text["decline"]}</button>'
            "</form>"
        )
    return _page(title, "\n".join(parts), status_code, lang)


def _not_found(provider: str, payment_id: str) -> HTMLResponse:
    return _page("Платёж не найден", f"<h1>Платёж {escape(payment_id)} ({escape(provider)}) не найден</h1>", 404)


async def show(request: Request) -> Response:
    """``GET``: the checkout page (a TBank payment moves NEW → FORM_SHOWED, as the real form does)."""
    state = sandbox_state(request)
    provider, payment_id = request.path_params["provider"], request.path_params["payment_id"]
    if provider == "tbank" and payment_id in state.tbank_payments:
        payment = state.tbank_payments[payment_id]
        if payment.status == "NEW":
            payment.status = "FORM_SHOWED"
    view = _view(state, provider, payment_id)
    if view is None:
        return _not_found(provider, payment_id)
    return _render(view, request.url.path, lang=page_language(request.headers.get("accept-language", "")))


async def submit(request: Request) -> Response:
    """``POST action=pay|decline``: settle, 303 to the return URL, deliver notifications in the background."""
    state = sandbox_state(request)
    provider, payment_id = request.path_params["provider"], request.path_params["payment_id"]
    view = _view(state, provider, payment_id)
    if view is None:
        return _not_found(provider, payment_id)
    action = parse_qs((await request.body()).decode("utf-8", "replace")).get("action", [""])[0]
    if action not in ("pay", "decline"):
        return _page("Неверное действие", "<h1>action должен быть pay или decline</h1>", 400)
    if view.final:
        return _render(view, request.url.path, 409, "Платёж уже завершён · The payment is already final.")
    pay = action == "pay"
    notes: list[Notification]
    return_url: str | None
    if provider == "yookassa":
        yk = state.yookassa_payments[payment_id]
        notes = yookassa.settle(state, yk, pay)
        return_url = yk.return_url
    else:
        tb = state.tbank_payments[payment_id]
        notes = tbank.settle(state, tb, pay)
        return_url = tb.success_url if pay else (tb.fail_url or tb.success_url)
    return RedirectResponse(
        return_url or request.url.path, status_code=303, background=BackgroundTask(state.deliver, notes)
    )


def routes() -> list[Route]:
    """The checkout routes."""
    return [Route(PATH, show, methods=["GET"]), Route(PATH, submit, methods=["POST"])]
