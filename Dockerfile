# One image for every Python process of the stack: importer API, workers, reconciler, and the
# fake provider. Used by docker-compose.yml (people who have Docker); the local stack (`drill up`)
# runs the same commands as plain processes.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY importer ./importer
COPY lab ./lab
COPY loadtests ./loadtests
COPY chaos ./chaos
COPY reports ./reports
RUN pip install .
USER nobody
