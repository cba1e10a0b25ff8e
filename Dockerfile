# One image for `vmt serve` (Cloud Run) and the Vertex AI Pipelines steps (docs/deploy.md):
# runtime dependencies only, installed from constraints.txt (the tested, locked set), non-root,
# numba kernels compiled into the image at build time.
#
#   docker build -t vmt .                         (public base image, packages from PyPI)
#   make image-test                               (offline: a debootstrap base and a wheelhouse)
#
# BASE is any Debian-like image with python3.11 and venv; the default is the public slim image.
# When wheelhouse/ holds wheels (made with `pip wheel` on the build host), they are installed
# with --no-index; otherwise pip reads PyPI. The local PyTorch trainer ([local] extra) is left
# out: in the cloud, runs train on Vertex AI.

ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/opt/vmt/numba-cache NUMBA_CPU_NAME=generic
WORKDIR /build
COPY pyproject.toml constraints.txt README.md ./
COPY wheelhouse/ ./wheelhouse/
COPY src ./src
COPY deploy/warm_numba.py ./
RUN python3 -m venv /opt/vmt \
 && if ls wheelhouse/*.whl >/dev/null 2>&1; then \
        /opt/vmt/bin/pip install --no-index --find-links wheelhouse -c constraints.txt \
            "vertex-model-training[service,labelbox,vertex,pipelines]"; \
    else \
        /opt/vmt/bin/pip install -c constraints.txt ".[service,labelbox,vertex,pipelines]"; \
    fi \
 && /opt/vmt/bin/pip uninstall --yes pip \
 && /opt/vmt/bin/python warm_numba.py

FROM ${BASE}
ARG VMT_UID=10001
RUN useradd --system --uid "${VMT_UID}" --home-dir /var/lib/vmt --create-home vmt
COPY --from=build /opt/vmt /opt/vmt
# numba recompiles only if the CPU model or the code changed; it may then write the cache.
RUN chown -R vmt /opt/vmt/numba-cache
ENV PATH=/opt/vmt/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/opt/vmt/numba-cache \
    NUMBA_CPU_NAME=generic \
    VMT_STATE_DIR=/var/lib/vmt \
    VMT_LOG_JSON=1 \
    PORT=8080
USER vmt
WORKDIR /var/lib/vmt
EXPOSE 8080
# --port defaults to $PORT (set by Cloud Run); the webhook secret is required (no --insecure).
# Pipeline steps override the command (python3 -m kfp.dsl.executor_main ...).
CMD ["vmt", "serve", "--host", "0.0.0.0"]
