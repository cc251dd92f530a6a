# The clocklab VM image: one `python -m vm_node` per container.
#
# Build it with `make image` (or `clocklab image`): that picks the base, builds
# the wheels on the host for the base's Python version into .cache/wheels/pyX.Y/
# and runs the build, so nothing inside the build touches the network. By hand:
#
#   python3.12 -m pip wheel . pip -w .cache/wheels/py3.12    # the base's Python
#   docker build -t clocklab-vm .
#
# and for the local base from scripts/base-image.sh (Python 3.11):
#
#   python3.11 -m pip wheel . pip -w .cache/wheels/py3.11
#   docker build --build-arg BASE_IMAGE=clocklab-base:bookworm \
#                --build-arg WHEELS=.cache/wheels/py3.11 -t clocklab-vm .
#
# Any glibc-based image with python3 (>= 3.11) and its `venv` module will do
# as a base, if it has iptables or apt-get to install it. The image runs with a read-only root filesystem, a tmpfs on /tmp,
# no capabilities, as uid 10001; logs go to /logs (bind-mount it, writable by
# that uid).

ARG BASE_IMAGE=python:3.12-slim

# --- build: a virtualenv with the app and its dependencies, from the wheels ---
FROM ${BASE_IMAGE} AS build
LABEL clocklab.image="build"
ARG WHEELS=.cache/wheels/py3.12
COPY ${WHEELS}/ /wheels/
# pip runs straight from its own wheel, so it is not installed into the venv;
# it byte-compiles what it installs (a read-only root cannot cache bytecode).
# /out is laid over the runtime's root: the user in passwd and group, /logs.
# The base may have no coreutils (scripts/base-image.sh's has none): Python
# does the file work.
RUN set -eu; \
    python3 -m venv --without-pip /opt/clocklab; \
    set -- /wheels/pip-*.whl; \
    /opt/clocklab/bin/python "$1/pip" install --no-index --find-links /wheels \
        --no-cache-dir --disable-pip-version-check --no-warn-script-location \
        --quiet clocklab; \
    /opt/clocklab/bin/python -c 'import vm_node, orjson, structlog'; \
    python3 -c 'import os; \
        os.makedirs("/out/etc"); os.makedirs("/out/logs"); os.chown("/out/logs", 10001, 10001); \
        add = {"passwd": "clocklab:x:10001:10001:clocklab VM:/nonexistent:/usr/sbin/nologin", \
               "group": "clocklab:x:10001:"}; \
        [open("/out/etc/" + f, "w").write(open("/etc/" + f).read() + line + "\n") \
         for f, line in add.items()]'

# --- runtime: the base, the venv, a user; nothing else ---
# Metadata first and the copies last, so that a rebuild redoes only the copies
# and the one label step that changes (the legacy builder pays about a second
# per step). `clocklab image` passes the arguments below.
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
# Partitions run iptables from this image, in a helper container that joins a VM's
# network namespace: the local base has it, a Debian base gets it from apt.
RUN command -v xtables-nft-multi >/dev/null || { apt-get update -qq \
        && apt-get install -y -qq --no-install-recommends iptables >/dev/null \
        && rm -rf /var/lib/apt/lists/*; }
ARG VERSION=0.0.0 REVISION=unknown CREATED=unknown SOURCE_DIGEST=unknown
LABEL org.opencontainers.image.title="clocklab-vm" \
      org.opencontainers.image.description="One clocklab VM: Lamport and vector clocks over TCP (python -m vm_node)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      clocklab.image="vm"
ENV PATH=/opt/clocklab/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLOCKLAB_LOG_DIR=/logs
USER 10001:10001
WORKDIR /tmp
EXPOSE 5000
ENTRYPOINT ["/opt/clocklab/bin/python", "-m", "vm_node"]
COPY --from=build /out/ /
COPY --from=build /opt/clocklab /opt/clocklab
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      clocklab.source="${SOURCE_DIGEST}"
