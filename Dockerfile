# syntax=docker/dockerfile:1
#
# The importer's image: the service alone (API, worker, reconciler, `importer ops`), no harness.
#
#   docker build -t product-importer .                   the service (the last stage, the default)
#   docker build --target lab -t product-importer-lab .  the proving ground's processes (moto's
#                                                         S3 server, the fake provider): docker-compose.yml
#
# Dependencies come from the lock files (scripts/lock.sh writes them; every file hash-checked) and
# are installed in a layer of their own, before any source is copied: a change to the code
# rebuilds only the last, small layer. The builder stages compile nothing (every locked package
# has a manylinux wheel for CPython 3.11); the runtime stage gets the finished venv only.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# One unprivileged user for every stage that runs something; no home, no shell.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin importer

# --- the service's venv -----------------------------------------------------------------------
FROM base AS importer-builder
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements/importer.txt requirements/importer.txt
RUN pip install --require-hashes --no-deps -r requirements/importer.txt
COPY pyproject.toml README.md ./
COPY importer ./importer
RUN pip install --no-deps . && pip check

# --- the proving ground's venv (docker-compose.yml's s3 and provider services) ---------------
FROM base AS lab-builder
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements/lab.txt requirements/lab.txt
RUN pip install --require-hashes --no-deps -r requirements/lab.txt
COPY pyproject.toml README.md ./
COPY importer ./importer
COPY lab ./lab
COPY loadtests ./loadtests
COPY chaos ./chaos
COPY reports ./reports
RUN pip install --no-deps . && pip check

FROM base AS lab
COPY --from=lab-builder /opt/venv /opt/venv
WORKDIR /tmp
USER importer
CMD ["drill", "--help"]

# --- the service (default target) ---------------------------------------------------------------
FROM base AS importer
COPY --from=importer-builder /opt/venv /opt/venv
WORKDIR /tmp
USER importer
# The API's port, read by the default command and by the HEALTHCHECK alike; inside a container
# the API must listen on every interface of the container's own network namespace to be reached.
ENV API_PORT=8000
EXPOSE 8000
# Fits the default command (the API): GET /healthz answers 200 only while Postgres and Redis
# answer. No curl in the slim image, so the standard library asks, bypassing any proxy
# variables. The worker and the reconciler have no HTTP port: a service that runs them turns
# this check off (docker-compose.yml does) and watches them as docs/architecture.md says.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('API_PORT', '8000'), timeout=4)"]
CMD ["sh", "-c", "exec importer api --host 0.0.0.0 --port \"$API_PORT\""]
