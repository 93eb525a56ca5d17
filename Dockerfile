# spot-extender image: docker build -t spot-extender:0.1.0 .
#
# Two stages: the builder makes a wheel of this project and installs it with its
# dependencies into the venv /opt/venv; the final image gets only that venv (no
# compilers, no pip cache, no sources) and runs as the non-root user 65532.
# Both stages must use the same base image: the venv's python is a symlink to the
# base image's interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# Only what the wheel needs (pyproject.toml declares README.md as the readme).
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/venv/bin/pip wheel --no-deps -w /wheels . \
 && /opt/venv/bin/pip install /wheels/*.whl \
 && /opt/venv/bin/spot-extender serve --help >/dev/null

FROM ${PYTHON_IMAGE}
# A passwd entry for 65532: kubernetes_asyncio calls Path.home() at import, which
# fails for a user the image does not know when $HOME is unset.
RUN groupadd --system --gid 65532 spot-extender \
 && useradd --system --uid 65532 --gid 65532 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin spot-extender
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8888
ENTRYPOINT ["spot-extender"]
CMD ["serve"]
