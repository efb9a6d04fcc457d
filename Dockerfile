# wpcdc: a long-running container beside the WordPress database.
#   docker build -t wpcdc .
#   docker run --init -v wpcdc-state:/var/lib/wpcdc \
#     -e WPCDC_MYSQL__HOST=db -e WPCDC_MYSQL__PASSWORD=... \
#     -e WPCDC_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 wpcdc check
# deploy/compose.yaml and deploy/kubernetes/ run it with the rest of the stack.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wpcdc ./wpcdc
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
# tini as PID 1 forwards SIGTERM/SIGINT to wpcdc and reaps zombies; wpcdc
# handles the signals itself (stop reading, flush, checkpoint, exit 0).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
RUN useradd --system --uid 10001 --home-dir /var/lib/wpcdc --create-home wpcdc
USER wpcdc
WORKDIR /var/lib/wpcdc
# The checkpoint must survive restarts: mount a volume here.
VOLUME ["/var/lib/wpcdc"]
ENV PYTHONUNBUFFERED=1 \
    WPCDC_CHECKPOINT__PATH=/var/lib/wpcdc/checkpoint.json \
    WPCDC_METRICS__HOST=0.0.0.0
# metrics.port: /metrics, and the probes /healthz (liveness) and /readyz (readiness).
EXPOSE 9108
ENTRYPOINT ["/usr/bin/tini", "--", "wpcdc"]
# Run `wpcdc check` once against your database first (docker run ... wpcdc check).
CMD ["run"]
