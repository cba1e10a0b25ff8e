# The vmt service for Cloud Run: `vmt serve` on $PORT, runtime dependencies only, non-root.
# Build: docker build -t vmt .      (or let `gcloud run deploy --source .` build it: docs/deploy.md)
# The local PyTorch trainer ([local] extra) is left out: in the cloud, runs train on Vertex AI.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN python -m venv /opt/vmt \
 && /opt/vmt/bin/pip install -c constraints.txt ".[service,labelbox,vertex]"

FROM python:3.11-slim
ARG VMT_UID=10001
RUN useradd --system --uid "${VMT_UID}" --home-dir /var/lib/vmt --create-home vmt
COPY --from=build /opt/vmt /opt/vmt
ENV PATH=/opt/vmt/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VMT_STATE_DIR=/var/lib/vmt \
    VMT_LOG_JSON=1 \
    PORT=8080
USER vmt
WORKDIR /var/lib/vmt
EXPOSE 8080
# --port defaults to $PORT (set by Cloud Run); the webhook secret is required (no --insecure).
CMD ["vmt", "serve", "--host", "0.0.0.0"]
