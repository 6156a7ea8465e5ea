"""The ``contiv-k8s-adapter`` command: watch an API server, keep netmaster's Kubernetes objects in step.

Startup checks what the adapter needs, in order, and ends with one line (exit 1) when something is
missing: the client library, a usable kubeconfig (or the pod's service account), netmaster and the
tenant, then the API server (a list it must be allowed to make). After that, failures are retried
forever with backoff and counted in the metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from contiv_api import __version__
from contiv_api.netmaster_client import NetmasterClient, NetmasterError
from netmaster.kubernetes.adapter.informer import ResourceInformer, Source, SourceError
from netmaster.kubernetes.adapter.metrics import AdapterMetrics
from netmaster.kubernetes.adapter.reconcile import Reconciler
from netmaster.kubernetes.adapter.source import LightkubeSource, SourceConfigError
from netmaster.kubernetes.adapter.translate import NAMESPACES, NETWORK_POLICIES, PODS, RESOURCES
from netmaster.logs import setup_logging

log = logging.getLogger("contiv-k8s-adapter")
PROG = "contiv-k8s-adapter"

DESCRIPTION = (
    "Kubernetes mode of Contiv: watches an API server (list + watch) for NetworkPolicies "
    "(networking.k8s.io/v1), Namespaces and Pods, and keeps netmaster's Kubernetes objects of one tenant "
    "equal to them through netmaster's REST API (/api/v1/kubernetes/, as 'netctl apply -f' does): "
    "policies, namespace labels and pod labels, which the agents enforce. In that tenant the API server "
    "is the truth: objects it does not have are deleted from netmaster. Needs list and watch on pods, "
    "namespaces and networkpolicies (docs/kubernetes.md has the RBAC and Deployment)."
)
EPILOG = (
    "The API server: --kubeconfig, else the pod's service account (in a cluster), else $KUBECONFIG, "
    "else ~/.kube/config. Metrics: Prometheus text on http://--metrics-listen/metrics "
    "(contiv_k8s_adapter_*: events, relists, writes, errors, refused objects, last sync)."
)


class StartupError(Exception):
    """What stops the adapter before it starts: one line for the operator."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--kubeconfig", type=Path, default=None,
                   help="kubeconfig file of the API server (default: in-cluster service account, $KUBECONFIG, "
                        "~/.kube/config)")
    p.add_argument("--context", default=None, help="kubeconfig context to use (default: its current context)")
    p.add_argument("--netmaster", default=os.environ.get("CONTIV_NETMASTER_URL", "http://127.0.0.1:9999"),
                   help="netmaster URL(s), comma-separated (any of them serves; default %(default)s, "
                        "env CONTIV_NETMASTER_URL)")
    p.add_argument("--netmaster-token", default=os.environ.get("CONTIV_NETMASTER_TOKEN"),
                   help="bearer token for netmaster (prefer the CONTIV_NETMASTER_TOKEN environment variable)")
    p.add_argument("--netmaster-ca", default=None,
                   help="CA bundle to verify an https netmaster (default: the system's; verification stays on)")
    p.add_argument("--tenant", default="default",
                   help="the Contiv tenant of the cluster's pods (the CNI configuration's); pods annotated "
                        "io.contiv.tenant with another tenant are left out (default %(default)s)")
    p.add_argument("--metrics-listen", default="127.0.0.1:9097",
                   help="HOST:PORT serving Prometheus metrics on /metrics ('' turns it off; default %(default)s)")
    p.add_argument("--watch-seconds", type=int, default=300,
                   help="how long the API server keeps one watch request open (a silent watch is re-opened "
                        "after this plus 30 s; default %(default)s)")
    p.add_argument("--startup-timeout", type=float, default=30.0,
                   help="seconds to reach netmaster and the API server at startup before giving up "
                        "(default %(default)s)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="json", choices=["json", "text"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    try:
        source = LightkubeSource.open(args.kubeconfig, args.context, watch_seconds=max(args.watch_seconds, 1))
        metrics = AdapterMetrics()
        if args.metrics_listen:
            serve_metrics(metrics, args.metrics_listen)
        return asyncio.run(_run(args, source, metrics))
    except (StartupError, SourceConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def serve_metrics(metrics: AdapterMetrics, listen: str) -> WSGIServer:
    """Serve *metrics* on ``http://listen/metrics`` from a thread; the server, to shut it down."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise StartupError(f"--metrics-listen {listen}: expected HOST:PORT")
    try:
        server, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=metrics.registry)
    except OSError as exc:
        raise StartupError(f"--metrics-listen {listen}: {exc.strerror or exc}") from None
    return server


async def _run(args: argparse.Namespace, source: LightkubeSource, metrics: AdapterMetrics) -> int:
    verify: bool | str = args.netmaster_ca or True
    client = NetmasterClient(args.netmaster.split(","), token=args.netmaster_token, verify=verify,
                             retry_for=args.startup_timeout)
    try:
        await check_netmaster(client, args.tenant)
        await check_api_server(source, args.startup_timeout)
        client.retry_for = 30.0  # from now on a failed call is retried by the informer, from its version
        reconciler = Reconciler(client, args.tenant, metrics)
        log.info("adapter starting", extra={"netmaster": client.url, "tenant": args.tenant})
        await _until_signal(run_informers(source, reconciler, metrics))
        return 0
    finally:
        await client.close()
        await source.close()


async def check_netmaster(client: NetmasterClient, tenant: str) -> None:
    try:
        await client.request("GET", f"/api/v1/tenants/{quote(tenant, safe='')}/")
    except NetmasterError as exc:
        if exc.status == 404:
            raise StartupError(f"tenant {tenant} not found in netmaster {client.url}: create it first "
                               f"(netctl tenant create {tenant})") from None
        if exc.status in (401, 403):
            raise StartupError(f"netmaster {client.url} refused the token ({exc.status}): set "
                               "--netmaster-token or CONTIV_NETMASTER_TOKEN") from None
        raise StartupError(f"netmaster {client.url}: {exc.message}") from None


async def check_api_server(source: LightkubeSource, within: float) -> None:
    """The API server answers, and lets the adapter list each resource (RBAC)."""
    for resource in RESOURCES:
        try:
            await asyncio.wait_for(source.check(resource), within)
        except SourceError as exc:
            raise StartupError(f"API server {source.server}: {exc}") from None
        except TimeoutError:
            raise StartupError(f"API server {source.server}: no answer to a list of {resource.plural} "
                               f"within {within:.0f}s") from None


async def run_informers(source: Source, reconciler: Reconciler, metrics: AdapterMetrics) -> None:
    """Namespaces and pods first; policies once their labels are in netmaster (translate.RESOURCES)."""
    labels = [ResourceInformer(r, source, reconciler, metrics) for r in (NAMESPACES, PODS)]
    policies = ResourceInformer(NETWORK_POLICIES, source, reconciler, metrics)
    async with asyncio.TaskGroup() as group:
        for informer in labels:
            group.create_task(informer.run())
        for informer in labels:
            await informer.synced.wait()
        group.create_task(policies.run())


async def _until_signal(work: Coroutine[Any, Any, None]) -> None:
    """Run *work* until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    log.info("adapter stopped")
