# syntax=docker/dockerfile:1
# The local app (FastAPI + Kafka poller) for docker-compose.yml. Same Python minor version as the
# Lambda runtime in template.yaml (python3.11). Pinned by full version tag; pin the digest too
# (python:3.11.14-slim-bookworm@sha256:...) when the registry is reachable to resolve it.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000

WORKDIR /app

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

# Dependencies first: this layer is rebuilt only when requirements.txt changes. Every runtime
# dependency ships manylinux wheels, so no compiler is needed.
COPY requirements.txt ./
RUN pip install --no-compile -r requirements.txt

COPY common/ common/
COPY functions/ functions/
COPY infra/docker/ infra/docker/
RUN chmod 0755 infra/docker/entrypoint.sh

USER app:app

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "/app/infra/docker/healthcheck.py"]

ENTRYPOINT ["/app/infra/docker/entrypoint.sh"]
