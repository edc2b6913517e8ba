# easel in a container, on an NVIDIA GPU. With compose.yaml: `docker compose up -d --build`. Alone:
#   docker build -t easel .
#   docker run -d --gpus 1 --init --env-file .env -v easel-data:/data -v easel-models:/models easel
#
# Base image: a plain slim Python, not nvidia/cuda. torch==2.13.0 from PyPI on Linux x86_64 is the CUDA build and
# brings CUDA's user-space libraries itself, as pip packages (cuda-toolkit 13.0, cuDNN, NCCL); only the driver
# comes from the host, mounted by the NVIDIA Container Toolkit when the container is given a GPU. A CUDA base
# image would only add a second copy of CUDA. The host needs the NVIDIA Container Toolkit and a driver for
# CUDA 13.0 (R580 or newer). Python 3.11: the version easel's test suite is run with.
FROM python:3.11-slim-bookworm

# NVIDIA_DRIVER_CAPABILITIES: what the NVIDIA runtime mounts into the container, CUDA (compute) and nvidia-smi (utility).
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# The dependencies first, read from pyproject.toml, in a layer of their own: several GB that a change to easel's
# code does not download again.
COPY pyproject.toml /src/pyproject.toml
RUN python -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgres"]))' > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# easel itself, with the postgres extra (asyncpg, for storage.database_url = "postgresql+asyncpg://..."); its
# dependencies are all there already, so pip only checks them.
COPY README.md /src/README.md
COPY bots /src/bots
COPY generation /src/generation
COPY storage /src/storage
RUN pip install '/src[postgres]' && rm -rf /src

# A user of its own; /data and /models belong to it, so named volumes mounted there start out writable by it.
RUN groupadd --system --gid 10001 easel \
    && useradd --system --uid 10001 --gid easel --create-home --home-dir /home/easel --shell /usr/sbin/nologin easel \
    && mkdir -p /data /models /config \
    && chown easel:easel /data /models

# The working directory holds the configuration: easel reads ./config.toml. This is the repository's; mount
# another over it (-v "$PWD/my-config.toml:/config/config.toml:ro", or a directory holding a config.toml at /config:
# without one there easel runs on its defaults).
COPY config.toml /config/config.toml
WORKDIR /config

# Weights (the Hugging Face cache, many GB: fetched on the first start, or ahead of it with
# `docker compose run --rm easel easel models download`) and data (the database and the files) live on volumes. The environment overrides the config's
# storage paths (EASEL_<SECTION>__<KEY>), so a mounted config with relative paths still writes to /data;
# set EASEL_STORAGE__DATABASE_URL to postgresql+asyncpg://... for PostgreSQL.
ENV HF_HOME=/models \
    EASEL_STORAGE__DATABASE_URL=sqlite+aiosqlite:////data/easel.db \
    EASEL_STORAGE__OUTPUTS_DIR=/data/files
VOLUME ["/data", "/models"]

# The user easel (numeric, so that a runtime can tell it is not root without reading /etc/passwd).
USER 10001:10001

# easel stops in order on SIGINT or SIGTERM (no more work, the batch on the GPU finishes and is delivered) within
# about 25 s, so give `docker stop` more than its default 10 s: docker stop -t 60 (compose: stop_grace_period).
# SIGINT is handled even while easel is still importing, also as PID 1 (run without --init).
STOPSIGNAL SIGINT
CMD ["easel", "run"]
