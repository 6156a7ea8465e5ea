"""The basic walkthrough: netmaster on embedded defaults, driven by netctl, narrated (no root needed).

``scripts/demo --basic`` (or ``python -m demo.basic``) runs this; ``scripts/demo`` alone runs the
ACI walkthrough of ``demo/``, which reuses ``netctl`` below to print commands the same way.

It starts netmaster on a SQLite file in a scratch directory (or ``--state-dir``), then runs the Contiv
workflow a network engineer follows, printing each netctl command and its output: a tenant, networks
(VXLAN and VLAN), endpoint groups, a policy with rules, an app profile, endpoints as agents create them,
and inspect views of what was allocated.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from testbed.netmaster import NetmasterProcess

BOLD = "\033[1m" if sys.stdout.isatty() else ""
DIM = "\033[2m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""

STEPS: list[tuple[str, list[str]]] = [
    (
        "The tenant 'default' exists from the first start; create a tenant for the blue team",
        [
            "tenant ls",
            "tenant create blue",
        ],
    ),
    (
        "Global settings: forwarding mode, VLAN/VXLAN ranges, private subnet",
        [
            "global info",
        ],
    ),
    (
        "Two networks: an overlay (VXLAN id allocated) and a VLAN network with a fixed tag",
        [
            "net create -t blue -e vxlan -s 10.1.1.0/24 -g 10.1.1.254 web-net",
            "net create -t blue -e vlan -p 300 -s 10.1.2.10-10.1.2.100/24 -g 10.1.2.1 db-net",
            "net ls -t blue",
        ],
    ),
    (
        "A policy for the database tier: deny all TCP, then allow 5432 from the app group",
        [
            "policy create -t blue db-policy",
            "group create -t blue web-net app",
            "policy rule-add -t blue -d in --action deny -l tcp db-policy 1",
            "policy rule-add -t blue -d in -g app -l tcp -P 5432 --priority 10 db-policy 2",
            "policy rule-ls -t blue db-policy",
        ],
    ),
    (
        "Endpoint groups: web with no policy (allow all), db with the policy and its own address pool",
        [
            "group create -t blue web-net web",
            "group create -t blue -p db-policy -r 10.1.2.50-10.1.2.59 db-net db",
            "group ls -t blue",
        ],
    ),
    (
        "An application profile ties the groups together (what ACI mode pushes to the APIC)",
        [
            "app-profile create -t blue -g web,app,db three-tier",
            "app-profile ls -t blue",
        ],
    ),
    (
        "Refusals are clear and change nothing",
        [
            "net create -t blue -e vlan -s 10.1.1.128/25 overlapping-net",
            "net rm -t blue db-net",
            "policy rule-add -t blue -d out -g app db-policy 3",
        ],
    ),
]


def netctl(url: str, command: str) -> int:
    """Run one netctl command against *url*, printing the command line and its output; its exit code."""
    print(f"{BOLD}$ netctl {command}{RESET}")
    result = subprocess.run(
        [sys.executable, "-m", "netmaster.cli.netctl", "--netmaster", url, *shlex.split(command)],
        capture_output=True,
        text=True,
    )
    out = (result.stdout + result.stderr).rstrip()
    if out:
        print(out)
    if result.returncode:
        print(f"{DIM}(exit code {result.returncode}){RESET}")
    print()
    return result.returncode


def _agents_join(url: str) -> None:
    """What an agent does when containers start: create endpoints (the CNI and Docker paths use this)."""
    print(f"{BOLD}## Containers start: agents create endpoints through the API{RESET}")
    http = httpx.Client(base_url=url, timeout=10)
    for ep, net, group, host in [
        ("web-1", "web-net", "web", "host1"),
        ("web-2", "web-net", "web", "host2"),
        ("app-1", "web-net", "app", "host1"),
        ("db-1", "db-net", "db", "host2"),
    ]:
        body = {
            "endpointID": ep,
            "tenantName": "blue",
            "networkName": net,
            "groupName": group,
            "containerID": ep,
            "containerName": ep,
            "host": host,
        }
        reply = http.post("/api/v1/endpoints/", json=body).json()
        print(
            f"POST /api/v1/endpoints/ {ep:<6} on {host}: ip {reply['ipAddress']:<11} mac {reply['macAddress']}"
            f"  vlan/vni {reply['pktTag']}/{reply['externalPktTag']}  epg id {reply['endpointGroupId']}"
        )
    print()


def run(state_dir: Path) -> int:
    store = f"sqlite://{state_dir / 'netmaster.db'}"
    print(f"{BOLD}Starting netmaster on {store}{RESET}\n")
    with NetmasterProcess.start(store, log_path=state_dir / "netmaster.log") as nm:
        for title, commands in STEPS:
            print(f"{BOLD}## {title}{RESET}")
            for command in commands:
                netctl(nm.url, command)
        _agents_join(nm.url)
        print(f"{BOLD}## Inspect: what netmaster allocated{RESET}")
        for command in ("net inspect -t blue db-net", "group inspect -t blue db", "endpoint inspect db-1"):
            netctl(nm.url, command)
        oper = httpx.get(nm.url + "/api/v1/inspect/networks/blue:web-net/").json()["Oper"]
        print(
            f"web-net: VXLAN id {oper['externalPktTag']}, local VLAN {oper['pktTag']}, "
            f"{oper['numEndpoints']} endpoints, allocated {oper['allocatedIPAddresses']}"
        )
        print(json.dumps({"state": str(state_dir), "netmaster log": str(state_dir / "netmaster.log")}, indent=2))
    print(f"\n{BOLD}Done.{RESET} netmaster stopped; its state stays in {state_dir}.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, help="where netmaster keeps its SQLite file (default: scratch)")
    args = parser.parse_args()
    if args.state_dir:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        return run(args.state_dir)
    with tempfile.TemporaryDirectory(prefix="contiv-demo-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
