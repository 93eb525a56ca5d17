# spot-extender image: docker build -t spot-extender:0.1.0 .
#
# Two stages: the builder installs the locked dependencies (requirements/runtime.txt,
# hash-checked) into the venv /opt/venv, then this project's wheel, built from the
# locked build backend (requirements/build.txt), on top without resolving anything; the final image gets only that venv (no compilers, no pip cache,
# no sources) and runs as the non-root user 65532.
# Both stages must use the same base image: the venv's python is a symlink to the
# base image's interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# The locks first: their layer stays cached while only the code changes. The wheel is
# built in a venv of its own from the build lock, so no unpinned build backend is fetched
# and none ends up in the image.
COPY requirements/runtime.txt requirements/build.txt ./requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/runtime.txt \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes -r requirements/build.txt
# Only what the wheel needs (pyproject.toml declares README.md as the readme).
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/build/bin/pip wheel --no-build-isolation --no-deps -w /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/spot-extender --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="spot-extender" \
      org.opencontainers.image.version="${VERSION}"
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
