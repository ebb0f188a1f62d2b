# syntax=docker/dockerfile:1
#
# The topicproj gRPC service in a container.
#
#   docker build -t topicproj .
#   docker run -p 50051:50051 -p 9095:9095 -v topicproj-models:/models topicproj
#   docker run -p 50051:50051 -p 9095:9095 -v "$PWD/runs:/models:ro" topicproj --model /models/tmdb-50
#
# Arguments after the image name go to `topicproj serve` (see `topicproj serve --help`); every
# setting is also a TOPICPROJ_<NAME> environment variable (`docker run -e TOPICPROJ_MAX_WAIT_MS=5`).
#
# GPU build: torch must come from a CUDA wheel index. PyTorch's CUDA wheels carry the CUDA
# libraries themselves, so the default base works with `docker run --gpus all` (the NVIDIA
# Container Toolkit supplies the driver):
#
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t topicproj:cuda .
#
# A CUDA base image works too, as long as it has Python >= 3.11 with the venv module at the same
# path in both stages, e.g. one built from
#
#   FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04
#   RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
#       && rm -rf /var/lib/apt/lists/*
#
# and tagged cuda-python:12.8, then
#
#   docker build --build-arg BASE_IMAGE=cuda-python:12.8 \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t topicproj:cuda .
#
# (Use the CUDA index that torch 2.13.0 is published for.)

ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

# torch's wheel index (empty: pip's own configuration) and requirement. The default is PyTorch's
# CPU index, whose torch 2.13.0 is the CPU build; PyPI's torch of the same version is the CUDA
# build (several GB of CUDA libraries). Where the CPU wheel comes from elsewhere (a local wheel
# folder in pip's configuration), pin the local version: TORCH_INDEX_URL= and
# TORCH_REQUIREMENT=torch==2.13.0+cpu (deploy/image/build.sh does).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_REQUIREMENT=torch==2.13.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip

# Dependencies first, in their own layers, so that editing the source does not reinstall them.
# torch comes from the CPU or CUDA index; keep the pin the same as in pyproject.toml.
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "${TORCH_REQUIREMENT}"

WORKDIR /src
COPY pyproject.toml ./
# The remaining dependencies, the client's and the server extra's, read from pyproject.toml (the
# torch pin is already satisfied).
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['server']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project itself: non-editable, no dev extra. README.md is the package's readme, and proto/
# holds the generated gRPC code installed as `topicproj.v1`.
COPY README.md ./
COPY proto ./proto
COPY models ./models
COPY service ./service
RUN pip install --no-deps . \
    && python -c "import topicproj.models.core.topic_model, topicproj.service.serving.server, topicproj.v1.topicproj_pb2_grpc" \
    && topicproj serve --help > /dev/null

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="topicproj" \
      org.opencontainers.image.description="gRPC service projecting keyword bags onto learned topics" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 topicproj \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/topicproj \
        --shell /usr/sbin/nologin topicproj \
    && mkdir -p /models \
    && chown 10001:10001 /models

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TOPICPROJ_HOST=0.0.0.0 \
    TOPICPROJ_DEMO_MODEL_DIR=/models/demo

WORKDIR /home/topicproj
USER 10001:10001

# Models live here. Without --model the demo model is trained into /models/demo on first start
# (seconds to a few minutes, depending on the CPU) and reused afterwards when the volume is kept.
VOLUME /models

# gRPC, Prometheus metrics (/metrics)
EXPOSE 50051 9095

# SERVING only once the model is loaded and warmed up. The start period covers training the demo
# model on a slow CPU. Assumes the default port; pass a matching --health-cmd to `docker run` if
# you change it.
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
    CMD ["topicproj", "health", "--address", "127.0.0.1:50051"]

# SIGTERM (docker stop) drains in-flight requests for up to --grace-seconds (default 10) and
# exits 0; give `docker stop` a longer timeout than that (`docker stop -t 15`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["topicproj", "serve"]
