# syntax=docker/dockerfile:1
# The local app (FastAPI + Kafka poller) for docker-compose.yml. Same Python minor version as the
# Lambda runtime in template.yaml (python3.13) and the local .venv. Pinned by full version tag; pin
# the digest too (python:3.13.16-slim-bookworm@sha256:...) when the registry is reachable to
# resolve it.
FROM python:3.13.16-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000

WORKDIR /app

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

# Dependencies first, from the lock: this layer is rebuilt only when uv.lock, pyproject.toml or the
# uv pin change. The pinned uv comes from PyPI, hash-checked, and leaves with the layer it built:
# the image gets the runtime and the local app's group (uvicorn, prometheus-client), never the dev
# tools. Every runtime dependency ships manylinux wheels, so no compiler is needed.
COPY tools/uv/requirements.txt /tmp/uv-requirements.txt
COPY pyproject.toml uv.lock ./
RUN pip install --no-compile --no-deps --only-binary=:all: --require-hashes -r /tmp/uv-requirements.txt \
 && uv sync --frozen --no-default-groups --group local --no-install-project \
 && pip uninstall -y uv \
 && rm /tmp/uv-requirements.txt

COPY common/ common/
COPY functions/ functions/
COPY cli/ cli/
COPY infra/docker/ infra/docker/
# The operator commands' one door, as in a checkout: `warehouse-stock <command>` (cli/).
RUN chmod 0755 infra/docker/entrypoint.sh \
 && printf '#!/bin/sh\nexec python -m cli "$@"\n' > /usr/local/bin/warehouse-stock \
 && chmod 0755 /usr/local/bin/warehouse-stock

USER app:app

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "/app/infra/docker/healthcheck.py"]

ENTRYPOINT ["/app/infra/docker/entrypoint.sh"]
