# The one botfleet image: every entry point (`botfleet worker`, `botfleet tenant-bot`, the control plane,
# the sales bot). Built by .ci/build-image.sh from a local base image and a wheelhouse made on the host,
# so the build itself needs no network (`docker build --network none`).
ARG BASE_IMAGE=botfleet-base:bookworm
FROM ${BASE_IMAGE}

ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/botfleet/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN python3 -m venv /opt/botfleet \
    && groupadd --system --gid 10001 botfleet \
    && useradd --system --uid 10001 --gid botfleet --home-dir /nonexistent --shell /usr/sbin/nologin botfleet

# Dependencies change rarely: their layer stays cached while the project's wheel changes.
COPY deps/ /wheels/deps/
RUN /opt/botfleet/bin/pip install --no-index --no-cache-dir --find-links /wheels/deps /wheels/deps/*.whl \
    && rm -rf /wheels/deps

# templates.precompile(): the compiled templates are cached beside them (as Python caches bytecode),
# written here because the bots cannot write the package folder and run with PYTHONDONTWRITEBYTECODE;
# a bot that compiled its texts itself would hold ~17 MB more.
COPY app/ /wheels/app/
RUN /opt/botfleet/bin/pip install --no-index --no-deps --no-cache-dir /wheels/app/*.whl \
    && rm -rf /wheels \
    && /opt/botfleet/bin/python -c "import aiogram, asyncpg, redis, cli.main" \
    && /opt/botfleet/bin/python -c "import templates; templates.precompile()"

USER 10001:10001
WORKDIR /tmp
STOPSIGNAL SIGTERM
CMD ["botfleet", "--help"]
