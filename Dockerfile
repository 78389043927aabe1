# Multi-stage: build a wheel with its dependencies, then a slim non-root runtime image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY matcher ./matcher
COPY jobs ./jobs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# Production unless told otherwise: no key is in the image, so it will not start without
# MATCHER_SECRET_KEY (docker-compose.yml passes it from the environment).
ENV MATCHER_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/matcher-metrics
# The certificate PDF (WeasyPrint) lays text out with Pango and sets it in the Noto CJK fonts,
# which it embeds: both come from Debian, nothing is fetched at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 matcher
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
USER matcher
WORKDIR /home/matcher
EXPOSE 8000
# The same image runs the API (default), migrations (`matcher db upgrade`) and the scheduler.
CMD ["gunicorn", "--config", "python:matcher.gunicorn_conf", "--bind", "0.0.0.0:8000", "--workers", "2", "matcher.wsgi:app"]
