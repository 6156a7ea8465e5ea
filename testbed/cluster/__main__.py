"""``python -m testbed.cluster up [--hosts N] | down PREFIX | down --all``.

``up`` builds a cluster, prints its prefix and host namespaces and leaves it running (agents fed by
/tmp/PREFIX/hI/state.json); ``down`` removes it (or every ``ag*``/``as*`` cluster recorded under /tmp).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testbed.cluster import CLUSTER_PREFIXES, Cluster, down


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed.cluster")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--hosts", type=int, default=2)
    up.add_argument("--no-agents", action="store_true")
    dn = sub.add_parser("down")
    dn.add_argument("prefix", nargs="?")
    dn.add_argument("--all", action="store_true", help="every cluster recorded in /tmp/ag*/ or /tmp/as*/cluster.json")
    args = p.parse_args(argv)
    if args.cmd == "up":
        cluster = Cluster(n_hosts=args.hosts)
        try:
            cluster.up(start_agents=not args.no_agents)
        except BaseException:
            cluster.down()
            raise
        print(f"prefix {cluster.prefix}")
        for h in cluster.hosts:
            print(f"{h.name}: netns {h.netns} vtep {h.vtep_ip} state {h.state_file} inspect {h.inspect_sock}")
        return 0
    prefixes = [args.prefix] if args.prefix else []
    if args.all:
        prefixes += [d.parent.name for pat in CLUSTER_PREFIXES for d in Path("/tmp").glob(f"{pat}*/cluster.json")]
    if not prefixes:
        p.error("down needs a PREFIX or --all")
    for prefix in prefixes:
        down(prefix)
        print(f"removed {prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
