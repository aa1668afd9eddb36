#!/bin/sh
# Container entrypoint (also runs outside a container: `sh entrypoint.sh`).
#
#   entrypoint.sh [serve] [SERVER-ARGS...]   prepare, then exec the server (the image's CMD is `serve`)
#   entrypoint.sh COMMAND [ARGS...]          exec COMMAND as-is: no migrations, no superuser
#                                            (e.g. `docker run IMAGE python manage.py shell`)
#
# Server mode: the first argument is `serve`, or starts with `-`, or there is none. SERVER-ARGS go to the
# server unchanged, after our own arguments, so they override gunicorn.conf.py
# (e.g. `--bind 127.0.0.1:8000`), or to runserver in development (e.g. `--nothreading`).
#
# Environment:
#   SKIP_MIGRATIONS=1        skip `manage.py migrate --noinput`
#   DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL
#                            create this superuser if no user of that name exists (a password is required);
#                            an existing user is left untouched, so restarts succeed
#   RUN_MODE=development     `manage.py runserver ${GUNICORN_BIND_HOST:-0.0.0.0}:${GUNICORN_PORT:-8000}` with
#                            the autoreloader, for docker-compose. The reloader's SIGTERM handler exits 0
#                            (django/utils/autoreload.py run_with_reloader); with --noreload, Python as PID 1
#                            would ignore TERM and `docker stop` would end in SIGKILL.
#   RUN_MODE=anything else   `gunicorn -c gunicorn.conf.py coffee_payment.asgi:application`
#   WEB_CONCURRENCY          unset before gunicorn starts (a platform's value must not crash it); a digits-only
#                            value becomes GUNICORN_WORKERS when that is unset; a warning names it either way
# The server is exec'd, so it is PID 1 in a container and receives the orchestrator's TERM itself.
set -eu

cd "$(dirname "$0")"

log() { printf 'entrypoint: %s\n' "$*" >&2; }

case "${1-serve}" in
    serve) if [ "$#" -gt 0 ]; then shift; fi ;;
    -*) ;;
    *) exec "$@" ;;
esac

case "${SKIP_MIGRATIONS:-0}" in
    1 | true | yes) log "SKIP_MIGRATIONS set: not migrating" ;;
    *)
        log "applying migrations"
        python manage.py migrate --noinput
        ;;
esac

# Prints "superuser:present" or "superuser:absent"; any other outcome (database down, bad settings) is an
# error that fails the start. The name travels in the environment, never through the code string.
superuser_state() {
    python manage.py shell --no-imports -c '
import os
from django.contrib.auth import get_user_model
User = get_user_model()
name = os.environ["DJANGO_SUPERUSER_USERNAME"]
found = User._default_manager.filter(**{User.USERNAME_FIELD: name}).exists()
print("superuser:" + ("present" if found else "absent"))
'
}

if [ -n "${DJANGO_SUPERUSER_USERNAME:-}" ]; then
    if [ -z "${DJANGO_SUPERUSER_PASSWORD:-}" ]; then
        log "DJANGO_SUPERUSER_USERNAME is set but DJANGO_SUPERUSER_PASSWORD is empty: refusing to start"
        exit 1
    fi
    state=$(superuser_state)
    case "$state" in
        *superuser:present*) log "superuser '$DJANGO_SUPERUSER_USERNAME' exists: left unchanged" ;;
        *superuser:absent*)
            log "creating superuser '$DJANGO_SUPERUSER_USERNAME'"
            # createsuperuser --noinput reads DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL from the environment.
            if ! python manage.py createsuperuser --noinput; then
                # Another replica may have created it in the meantime; anything else is a real error.
                case "$(superuser_state)" in
                    *superuser:present*) log "superuser was created concurrently: continuing" ;;
                    *) exit 1 ;;
                esac
            fi
            ;;
        *)
            log "could not tell whether the superuser exists: $state"
            exit 1
            ;;
    esac
fi

# A drain flag left by the previous container's preStop (on a volume that outlives it) must not keep this one
# unready: /readyz answers 503 while SERVING_DRAIN_FILE exists.
if [ -n "${SERVING_DRAIN_FILE:-}" ]; then
    rm -f "$SERVING_DRAIN_FILE"
fi

if [ "${RUN_MODE:-production}" = development ]; then
    log "RUN_MODE=development: runserver"
    host=${GUNICORN_BIND_HOST:-0.0.0.0}
    case "$host" in *:*) host="[$host]" ;; esac # IPv6 literal
    exec python manage.py runserver "$host:${GUNICORN_PORT:-8000}" "$@"
fi
# WEB_CONCURRENCY (set by some platforms) is gunicorn's default worker count, parsed before gunicorn.conf.py
# runs: an empty or non-integer value would crash the start. A digits-only value becomes GUNICORN_WORKERS when
# that is unset (gunicorn.conf.py range-checks it); the variable is then unset, with a warning either way.
if [ -n "${WEB_CONCURRENCY+set}" ]; then
    case "$WEB_CONCURRENCY" in
        '' | *[!0-9]*)
            log "WARNING: WEB_CONCURRENCY='$WEB_CONCURRENCY' is not an integer: unset (use GUNICORN_WORKERS)"
            ;;
        *)
            if [ -z "${GUNICORN_WORKERS+set}" ]; then
                log "WARNING: WEB_CONCURRENCY=$WEB_CONCURRENCY taken as GUNICORN_WORKERS and unset (use GUNICORN_WORKERS)"
                GUNICORN_WORKERS=$WEB_CONCURRENCY
                export GUNICORN_WORKERS
            else
                log "WARNING: WEB_CONCURRENCY=$WEB_CONCURRENCY unset: GUNICORN_WORKERS=$GUNICORN_WORKERS applies"
            fi
            ;;
    esac
    unset WEB_CONCURRENCY
fi
log "starting gunicorn"
exec gunicorn -c gunicorn.conf.py coffee_payment.asgi:application "$@"
