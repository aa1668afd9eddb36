"""X-Forwarded-* count only from GUNICORN_FORWARDED_ALLOW_IPS, on real gunicorn + Uvicorn workers (issue 11, item 4).

An untrusted peer's ``X-Forwarded-Proto: https`` must not make the request secure (it still gets the HTTPS
redirect, even with the old ``TRUST_X_FORWARDED_PROTO=1``); a trusted proxy's does. A trusted proxy passing on a
client address that is not an IP (``X-Forwarded-For: zzz``) must not cause a 5xx: on PostgreSQL the notification
inbox (``inet`` column) stores NULL (a valid address being kept: tests/unit/test_client_address.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from devtools.dbtemplate import prepare_database
from devtools.pg import temporary_database
from devtools.processes import GunicornServer, running_gunicorn, serving_env
from tools.container.testsupport import query

pytestmark = pytest.mark.timeout(180)

LOGIN = "/admin/login/"
REDIRECTING = {"SECURE_SSL_REDIRECT": "1", "TRUST_X_FORWARDED_PROTO": "1", "GUNICORN_WORKERS": "1"}


def _get(server, path: str, **headers: str) -> httpx.Response:
    return httpx.get(server.url(path), headers=headers, timeout=10, follow_redirects=False)


def test_an_untrusted_peers_forwarded_proto_still_gets_the_https_redirect():
    env = {**REDIRECTING, "GUNICORN_FORWARDED_ALLOW_IPS": "10.9.9.9"}  # the test client (127.0.0.1) is not a proxy
    with running_gunicorn(env=env) as server:
        for path in (LOGIN, "/v1/order-status/0"):  # full middleware stack and the lean /v1/ stack
            response = _get(server, path, **{"X-Forwarded-Proto": "https"})
            assert response.status_code == 301, (path, response.status_code)
            assert response.headers["location"].startswith("https://"), response.headers["location"]
        assert "TRUST_X_FORWARDED_PROTO='1' is ignored" in server.logs()


def test_a_trusted_proxys_forwarded_proto_counts():
    env = {**REDIRECTING, "GUNICORN_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with running_gunicorn(env=env) as server:
        assert _get(server, LOGIN).status_code == 301  # plain http from the proxy itself: redirected
        assert _get(server, LOGIN, **{"X-Forwarded-Proto": "https"}).status_code == 200


@pytest.fixture(scope="module")
def trusting_server_on_postgres() -> Iterator[tuple[GunicornServer, str]]:
    """One PostgreSQL database (a clone of the migrated template) and one gunicorn trusting 127.0.0.1 as a proxy,
    shared by the addresses below (each test empties the notification inbox first): (server, database URL)."""
    with temporary_database("coffee_xff", migrated=True) as database_url:
        env = {"DATABASE_URL": database_url, "GUNICORN_FORWARDED_ALLOW_IPS": "127.0.0.1", "GUNICORN_WORKERS": "1"}
        prepare_database(serving_env(0, env))  # the clone is current; migrates only if the template failed
        with running_gunicorn(env=env) as server:
            yield server, database_url


@pytest.mark.postgres
@pytest.mark.parametrize("forwarded_for", ["zzz", "1.2.3.4.5", "fe80::1%eth0"])
def test_a_client_address_that_is_not_an_ip_is_stored_as_null(trusting_server_on_postgres, forwarded_for):
    server, database_url = trusting_server_on_postgres
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as db:
        db.execute("DELETE FROM payments_notification")  # this address's rows only, below
    response = httpx.post(
        server.url("/v1/tbank-webhook"),
        content=b'{"TerminalKey": "none"}',
        headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
        timeout=10,
    )
    assert response.status_code < 500, (response.status_code, response.text, server.logs()[-3000:])
    # Whether junk is stored at all is the inbox's business; if it is, the address is NULL.
    assert all(row == (None,) for row in query(database_url, "SELECT remote_addr FROM payments_notification"))
