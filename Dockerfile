# syntax=docker/dockerfile:1
# Build: docker build -t game-shop .
# Run:   docker run --env-file .env -v shop-data:/data game-shop
# Webhook workers on PostgreSQL and Redis: docker-compose.yml (python -m bot --workers 2)
# (leave DATABASE_PATH out of .env: the image keeps the database on the /data volume)

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
# the dependencies exactly as locked and tested (make test installs the same versions)
COPY requirements.lock ./
RUN /venv/bin/pip install --require-hashes -r requirements.lock
# then the shop itself, with its package data (bot/locales, storage/migrations), no resolving
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY services ./services
COPY storage ./storage
COPY sandboxes ./sandboxes
RUN /venv/bin/pip install --no-deps --no-build-isolation .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data shop \
    && mkdir -p /data && chown shop /data
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_PATH=/data/shop.sqlite3
VOLUME ["/data"]
# webhook mode: the webhook, /healthz, /readyz and /metrics
EXPOSE 8080
# on the volume: even a relative DATABASE_PATH lands where the shop user can write
WORKDIR /data
USER shop
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -m bot.healthcheck
CMD ["python", "-m", "bot"]
