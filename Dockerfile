# Coffee Payments Server image: gunicorn + Uvicorn workers (RUN_MODE=development: runserver).
# Build: `invoke image` (docker, podman or buildah). Works with the legacy builder (no BuildKit features).

# --- builder: the locked dependencies in a venv, then the static files --------------------------------------
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The lock alone first: this layer is rebuilt only when requirements.lock changes, not on every code edit.
# requirements.lock is `uv export --frozen --no-dev --no-emit-project` of uv.lock (hashes checked).
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock

WORKDIR /app
COPY . .
# A throwaway key for this one command: it is not an ENV, so it is not in the image's runtime environment.
RUN SECRET_KEY=collectstatic-build-only DEBUG=0 python manage.py collectstatic --noinput

# --- runtime ----------------------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    GUNICORN_PORT=8000

# A fixed UID/GID, so volume ownership and Kubernetes' runAsNonRoot/runAsUser can rely on it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Code and static files stay root-owned (read-only to the app user); only var/ (the SQLite default) is writable.
COPY . .
COPY --from=builder /app/staticfiles /app/staticfiles
RUN chmod 0755 /app/entrypoint.sh \
    && mkdir -p /app/var \
    && chown 10001:10001 /app/var

USER 10001:10001
EXPOSE 8000

# No curl in the image: Python's urllib. urlopen raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('GUNICORN_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["/app/entrypoint.sh"]
CMD ["serve"]
