"""``apic-mock``: run the APIC emulator.

Examples::

    apic-mock                                   # https://127.0.0.1:8443, admin/password
    apic-mock --listen 127.0.0.1:0 --ca-out ca.pem --port-file port   # free port, CA for clients
    apic-mock --http --listen 127.0.0.1:8080 --user admin:secret --user ro:readonly
    apic-mock --state tree.json --seed fabric.json --demo-fabric
    apic-mock leaf --node 101 --apic-url https://127.0.0.1:8443 --apic-ca ca.pem --netns leaf101   # a leaf

Admin API (no authentication; keep the mock on localhost):
    GET  /mock/health      POST /mock/reset      GET /mock/dump        GET/DELETE /mock/stats
    POST /mock/faults {"kind":"error|latency|reset", "status":503, "count":N, "share":0.3, "path":RE}
    POST /mock/tokens/expire     POST /mock/seed     POST /mock/endpoints     DELETE /mock/objects?dn=
See docs/apic_mock.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from apic_mock import log as logsetup
from apic_mock import tls
from apic_mock.errors import ApicError
from apic_mock.serve import build_server, listening_socket
from apic_mock.service import DEFAULT_VERSION, ApicService, Settings

log = logging.getLogger("apic_mock.cli")


def _user(value: str) -> tuple[str, str]:
    name, sep, pwd = value.partition(":")
    if not sep or not name or not pwd:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD")
    return name, pwd


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apic-mock",
        description=(
            "A Cisco APIC REST emulator: aaaLogin/refresh/logout and certificate signatures, the "
            "management information tree with APIC's classes, naming and containment, DN and class "
            "queries with filters and subtree options, config POST/DELETE with APIC error codes, "
            "websocket subscriptions, and an admin API under /mock/ for fault injection, request "
            "counters, reset and dump."
        ),
        epilog=__doc__.split("Examples::", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 8443),
        metavar="HOST:PORT",
        help="address to serve on (default 127.0.0.1:8443; port 0 picks a free port)",
    )
    parser.add_argument("--http", action="store_true", help="serve plain HTTP instead of HTTPS")
    parser.add_argument("--cert", type=Path, help="server certificate (PEM); default: generated at start")
    parser.add_argument("--key", type=Path, help="private key of --cert (PEM)")
    parser.add_argument(
        "--ca-out",
        type=Path,
        metavar="FILE",
        help="write the CA certificate clients should trust (the generated CA, or --cert)",
    )
    parser.add_argument(
        "--port-file",
        type=Path,
        metavar="FILE",
        help="write the bound port here once listening (useful with port 0)",
    )
    parser.add_argument(
        "--user",
        type=_user,
        action="append",
        metavar="NAME:PASSWORD",
        help="a local user; repeatable (default admin:password)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="persist the tree to FILE after every change and load it at start",
    )
    parser.add_argument(
        "--seed",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="preload objects from an APIC envelope JSON file; repeatable",
    )
    parser.add_argument(
        "--demo-fabric",
        action="store_true",
        help="preload a controller, spine 201, leaves 101-102 with ports eth1/1-48",
    )
    parser.add_argument("--version-string", default=DEFAULT_VERSION, help="APIC version to report")
    parser.add_argument(
        "--refresh-timeout",
        type=int,
        default=600,
        help="token lifetime in seconds (refreshTimeoutSeconds, default 600)",
    )
    parser.add_argument(
        "--accept-unsigned",
        action="store_true",
        help="accept certificate cookies without checking the request signature",
    )
    parser.add_argument(
        "--max-result",
        type=int,
        default=100_000,
        help="queries returning more objects without page-size fail like APIC's "
        "'result dataset is too big' (default 100000)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Translate parsed options to service settings."""
    return Settings(
        users=dict(args.user) if args.user else {"admin": "password"},
        version=args.version_string,
        refresh_timeout=args.refresh_timeout,
        accept_unsigned=args.accept_unsigned,
        state_file=args.state,
        seeds=list(args.seed),
        demo_fabric=args.demo_fabric,
        max_result=args.max_result,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["leaf"]:
        from apic_mock.leaf.cli import main as leaf_main  # only the leaf needs OVS and namespaces

        return leaf_main(argv[1:])
    args = build_parser().parse_args(argv)
    logsetup.configure(args.log_level)
    if bool(args.cert) != bool(args.key):
        print("apic-mock: --cert and --key go together", file=sys.stderr)
        return 2
    try:
        service = ApicService(settings_from(args))
    except (OSError, ValueError, ApicError) as exc:
        print(f"apic-mock: cannot load initial state: {exc}", file=sys.stderr)
        return 2
    ssl: dict[str, str] = {}
    if not args.http:
        if args.cert:
            cert, key, ca = args.cert, args.key, args.cert
        else:
            files = tls.generate(Path(tempfile.mkdtemp(prefix="apic-mock-tls-")))
            cert, key, ca = files.cert, files.key, files.ca
        ssl = {"cert": str(cert), "key": str(key)}
        if args.ca_out:
            args.ca_out.write_bytes(Path(ca).read_bytes())
    host, port = args.listen
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    if args.port_file:
        args.port_file.write_text(str(bound))
    server = build_server(service, certfile=ssl.get("cert"), keyfile=ssl.get("key"), log_level=args.log_level)
    scheme = "http" if args.http else "https"
    log.info("listening", extra={"url": f"{scheme}://{host}:{bound}", "objects": len(service.tree)})
    asyncio.run(server.serve(sockets=[sock]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
