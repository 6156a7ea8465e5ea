"""``aci-gw``: run the gateway, or probe a running one (``--healthcheck``, used by the image).

Configuration comes from the environment (Contiv's variables); a bad or missing setting stops startup
with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import urllib.error
import urllib.request

from aci_gw.config import ConfigError, GatewaySettings, load_settings, parse_listen_url


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aci-gw", description="Contiv-compatible Cisco ACI gateway",
        epilog="Configured by Contiv's environment variables (APIC_URL, APIC_USERNAME, APIC_PASSWORD, ...; see "
               "docs/aci.md). Drift watch: APIC_DRIFT_WATCH=yes|no (default yes), APIC_DRIFT_REPAIR=yes|no "
               "(no: report drift only), APIC_SUBSCRIPTION_TIMEOUT (s, default 60), APIC_DRIFT_REPAIR_INTERVAL "
               "(s between repairs of one tenant, default 1).")
    p.add_argument("--listen-url",
                   help="HOST:PORT to serve on (default 127.0.0.1:5000, env ACI_GW_LISTEN_URL)")
    p.add_argument("--token", help="bearer token required by the API (env ACI_GW_TOKEN)")
    p.add_argument("--healthcheck", action="store_true",
                   help="probe /healthz of the gateway at --listen-url and exit 0 when healthy")
    return p


def configure_logging(level: str) -> None:
    """LOG_LEVEL applies to the gateway's own loggers. The HTTP libraries stay at WARNING whatever it
    says: at DEBUG, httpcore logs raw headers, APIC tokens and signature cookies among them."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def healthcheck(listen_url: str) -> int:
    host, port = parse_listen_url(listen_url)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"aci-gw: unhealthy: {exc}", file=sys.stderr)
        return 1


def serve(settings: GatewaySettings) -> None:
    import uvicorn

    from aci_gw.apic import make_client
    from aci_gw.app import create_app
    from aci_gw.gateway import Gateway
    from aci_gw.metrics import Metrics

    metrics = Metrics()
    client = make_client(settings.apic, metrics) if settings.apic is not None else None
    gateway = Gateway(settings, client, metrics)
    log = logging.getLogger("aci_gw")
    if client is None:
        log.info("dry-run mode (APIC_URL=SANITY): requests are validated, nothing is sent")
    else:
        log.info("APIC %r via %s backend", settings.apic, client.backend)
    log.info("listening on %s:%d%s", settings.listen_host, settings.listen_port,
             " (bearer token required)" if settings.token else "")
    gateway.start()
    try:
        uvicorn.run(create_app(gateway, settings.token), host=settings.listen_host, port=settings.listen_port,
                    log_level=settings.log_level.lower(), access_log=settings.log_level == "DEBUG")
    finally:
        gateway.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.healthcheck:
            return healthcheck(args.listen_url or os.environ.get("ACI_GW_LISTEN_URL") or "127.0.0.1:5000")
        settings = load_settings(os.environ, args.listen_url, args.token)
        configure_logging(settings.log_level)
        serve(settings)
    except ConfigError as exc:
        print(f"aci-gw: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
