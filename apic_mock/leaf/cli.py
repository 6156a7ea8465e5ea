"""``apic-mock leaf`` (or ``python -m apic_mock.leaf``): run one simulated ACI leaf.

Examples::

    apic-mock leaf --node 101 --apic-url https://127.0.0.1:8443 --apic-ca ca.pem \\
        --netns leaf101 --port eth1/1=eth1-1 --port eth1/2=eth1-2
    APIC_PASSWORD=secret apic-mock leaf --node 102 --apic-url http://127.0.0.1:8080 --netns leaf102

The namespace is created when absent (and then deleted on exit); ``--port`` interfaces must already
be in it (more can be attached while it runs: ``ovs-vsctl add-port leaf IF -- set interface IF
external_ids:fabric-port=eth1/N`` with ``OVS_RUNDIR=<rundir>/ovs``). SIGTERM or SIGINT tears
everything down: learnt endpoints removed from the APIC, OVS stopped, namespace and run directory
removed. Logs are JSON lines on stderr; ``<rundir>/status.json`` tells how far the leaf is.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from apic_mock import log as logsetup
from apic_mock.leaf.controller import LeafConfig, LeafController
from apic_mock.leaf.switch import FABRIC_PORT_RE

log = logging.getLogger("apic_mock.leaf.cli")


def _port(value: str) -> tuple[str, str]:
    fabric, sep, iface = value.partition("=")
    if not sep or not FABRIC_PORT_RE.match(fabric) or not iface:
        raise argparse.ArgumentTypeError("expected eth1/N=INTERFACE (an interface in the leaf namespace)")
    return fabric, iface


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apic-mock leaf",
        description=(
            "A simulated ACI leaf: a network namespace with its own userspace Open vSwitch, programmed "
            "from the APIC's tree (static path/node bindings, BDs, VRFs, contracts, vzAny, preferred "
            "groups, unenforced VRFs, pervasive gateway), learning endpoints and reporting them as fvCEp."
        ),
        epilog=__doc__.split("Examples::", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--node", type=int, required=True, help="leaf node id, e.g. 101")
    parser.add_argument("--pod", type=int, default=1, help="pod id (default 1)")
    parser.add_argument("--apic-url", required=True, help="APIC (apic_mock) URL, e.g. https://127.0.0.1:8443")
    parser.add_argument("--apic-user", default=os.environ.get("APIC_USERNAME", "admin"),
                        help="APIC user (default $APIC_USERNAME or admin); the password is $APIC_PASSWORD "
                        "(default 'password')")
    parser.add_argument("--apic-ca", help="CA certificate to verify the APIC (default: system CAs)")
    parser.add_argument("--netns", required=True, help="the leaf's network namespace (created when absent)")
    parser.add_argument("--rundir", type=Path, help="run directory for OVS and status (default: a new tmp dir)")
    parser.add_argument("--port", type=_port, action="append", default=[], metavar="eth1/N=IFACE",
                        help="attach IFACE (in the leaf namespace) as fabric port eth1/N; repeatable")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between APIC reads (0.5)")
    parser.add_argument("--no-subscribe", action="store_true",
                        help="do not subscribe to APIC events (websocket); rely on polling alone")
    parser.add_argument("--endpoint-age", type=float, default=900.0,
                        help="seconds of silence before a learnt endpoint is removed (900, as ACI)")
    parser.add_argument("--resync-interval", type=float, default=30.0,
                        help="seconds between re-reads of the APIC's endpoint list (30)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.configure(args.log_level)
    if os.geteuid() != 0:
        print("apic-mock leaf: needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    if args.poll_interval <= 0 or args.endpoint_age <= 0:
        print("apic-mock leaf: --poll-interval and --endpoint-age must be positive", file=sys.stderr)
        return 2
    rundir = args.rundir or Path(tempfile.mkdtemp(prefix=f"leaf{args.node}-"))
    config = LeafConfig(
        node=args.node, netns=args.netns, rundir=rundir, apic_url=args.apic_url, username=args.apic_user,
        password=os.environ.get("APIC_PASSWORD", "password"), ca_file=args.apic_ca, pod=args.pod,
        ports=dict(args.port), poll_interval=args.poll_interval, endpoint_age=args.endpoint_age,
        resync_interval=args.resync_interval, subscribe=not args.no_subscribe,
    )
    controller = LeafController(config)
    signal.signal(signal.SIGTERM, lambda *_: controller.stop())
    signal.signal(signal.SIGINT, lambda *_: controller.stop())
    try:
        controller.setup()
    except (OSError, RuntimeError, ValueError) as exc:
        log.error("leaf did not start", extra={"error": str(exc)})
        print(f"apic-mock leaf: cannot start: {exc}", file=sys.stderr)
        controller.shutdown()
        return 1
    controller.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
