# aci-gw: the Contiv-compatible Cisco ACI gateway.
#
#   docker build -t aci-gw .                                   # python:3.11-slim base, pip from PyPI
#   docker build --build-arg BASE_IMAGE=local/debian-python:bookworm --build-arg PIP_OFFLINE=1 .
#
# Optional cobra SDK: put acicobra/acimodel wheels in docker/aci-gw/wheels/ (see the README there).
# Configuration is by environment only (APIC_URL, APIC_USERNAME, APIC_PASSWORD or APIC_CERT_DN +
# APIC_LOCAL_KEY_FILE, APIC_PHYS_DOMAIN, APIC_LEAF_NODE, ...; docs/aci.md).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_OFFLINE=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/aci-gw
COPY docker/aci-gw/requirements.txt /build/requirements.txt
COPY docker/aci-gw/wheels/ /build/wheels/
RUN set -e; \
    if [ "$PIP_OFFLINE" = 1 ]; then offline=--no-index; else offline=; fi; \
    pip="/opt/aci-gw/bin/pip install $offline --find-links /build/wheels"; \
    $pip "setuptools>=68" wheel; \
    $pip -r /build/requirements.txt; \
    for sdk in /build/wheels/acicobra-*.whl /build/wheels/acimodel-*.whl; do \
        if [ -f "$sdk" ]; then $pip "$sdk"; fi; \
    done
COPY pyproject.toml README.md /build/src/
COPY aci_gw /build/src/aci_gw
COPY contiv_api /build/src/contiv_api
RUN /opt/aci-gw/bin/pip install --no-index --no-deps --no-build-isolation /build/src \
    && /opt/aci-gw/bin/python -c "import aci_gw.app, aci_gw.cli"

FROM ${BASE_IMAGE}
COPY --from=build /opt/aci-gw /opt/aci-gw
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin aci-gw
USER 10001
ENV PATH=/opt/aci-gw/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ACI_GW_LISTEN_URL=0.0.0.0:5000 \
    APIC_LOCAL_KEY_FILE=/aciconfig/aci.key
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["aci-gw", "--healthcheck"]
ENTRYPOINT ["aci-gw"]
