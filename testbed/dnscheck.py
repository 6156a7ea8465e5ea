"""DNS checks from container namespaces, and a stand-in for a host's resolver.

``python -m testbed.dnscheck query NAME TYPE SERVER [--tcp]`` (in a container's namespace) sends one
query and prints ``{"rcode": "NOERROR", "answers": ["10.1.1.1", ...]}`` (A addresses, SRV as
``port target``, PTR targets). ``upstream PORT`` answers ``outside.example`` with 192.0.2.77 and
everything else with NXDOMAIN, on 127.0.0.1 (UDP): the "host's resolver" a test agent forwards to.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from testbed.process import CHILD_ENV, REPO, python_in_ns, spawn_until_printed

OUTSIDE_NAME = "outside.example"
OUTSIDE_ADDRESS = "192.0.2.77"


def _in_ns(ns: str, *args: str) -> list[str]:
    return python_in_ns(ns, "testbed.dnscheck", *args)


def query(ns: str, name: str, qtype: str = "A", server: str = "10.0.0.1", tcp: bool = False) -> dict[str, Any]:
    """One query from *ns*: its rcode and answers (``{"rcode": "TIMEOUT"}`` when none came)."""
    out = subprocess.run(_in_ns(ns, "query", name, qtype, server, *(["--tcp"] if tcp else [])), capture_output=True,
                         text=True, env=CHILD_ENV, cwd=REPO, timeout=30, check=True).stdout
    return dict(json.loads(out))


def start_upstream(ns: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    return spawn_until_printed(_in_ns(ns, "upstream", str(port)), workdir / f"upstream-{ns}.log", "serving",
                               f"upstream resolver in {ns}", env=CHILD_ENV, cwd=REPO)


def _query(name: str, qtype: str, server: str, tcp: bool) -> None:
    request = DNSRecord.question(name, qtype)
    try:
        reply = DNSRecord.parse(request.send(server, 53, tcp=tcp, timeout=2))
    except (TimeoutError, OSError) as exc:
        print(json.dumps({"rcode": "TIMEOUT", "error": str(exc)}))
        return
    answers = []
    for rr in reply.rr:
        if rr.rtype == QTYPE.SRV:
            answers.append(f"{rr.rdata.port} {rr.rdata.target}")
        else:
            answers.append(str(rr.rdata))
    print(json.dumps({"rcode": RCODE.get(reply.header.rcode), "answers": answers, "ttl": [rr.ttl for rr in reply.rr]}))


def _upstream(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print("serving", flush=True)
    while True:
        data, peer = sock.recvfrom(4096)
        request = DNSRecord.parse(data)
        reply = request.reply()
        if str(request.q.qname).rstrip(".") == OUTSIDE_NAME and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(OUTSIDE_ADDRESS), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        sock.sendto(reply.pack(), peer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.dnscheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_query = sub.add_parser("query", help="one query, print rcode and answers")
    p_query.add_argument("name")
    p_query.add_argument("qtype")
    p_query.add_argument("server")
    p_query.add_argument("--tcp", action="store_true")
    p_up = sub.add_parser("upstream", help="a resolver on 127.0.0.1:PORT knowing one outside name")
    p_up.add_argument("port", type=int)
    args = parser.parse_args(argv)
    if args.cmd == "query":
        _query(args.name, args.qtype, args.server, args.tcp)
    else:
        _upstream(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
