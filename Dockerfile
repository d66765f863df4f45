# syntax=docker/dockerfile:1
# Build: docker build -t events-app .
# Run:   docker run -p 8000:8000 -e EVENTS_SECRET_KEY=... -e EVENTS_DATABASE_URL=... events-app

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events_app ./events_app
# The package is installed in editable mode so that templates/, static/ and migrations/ beside it are
# found at the same /app path in the runtime stage.
RUN /venv/bin/pip install -e .

FROM python:3.11-slim AS runtime
# DejaVu Sans: certificates of attendance render any Latin, Greek or Cyrillic name.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
ENV PATH="/venv/bin:$PATH" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    EVENTS_VAR_DIR=/var/lib/events-app
RUN useradd --system --uid 10001 --home-dir /var/lib/events-app --create-home events
COPY --from=build /venv /venv
WORKDIR /app
COPY --from=build /app /app
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
USER events
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"
CMD ["sh", "-c", "events-app db upgrade && exec events-app run --host 0.0.0.0 --port 8000"]
