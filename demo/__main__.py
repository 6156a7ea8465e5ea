"""``python -m demo [--keep] | --basic | down``: what ``scripts/demo`` runs (as root, from the repository)."""

from __future__ import annotations

import argparse
import sys

from testbed.cluster.prereq import missing_prerequisites


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="The ACI walkthrough: apic_mock, aci-gw, netmaster (SQLite, ACI mode), two simulated hosts "
        "with agents and a simulated leaf; a tenant from the APIC, EPGs and a policy with netctl, containers, and "
        "packets allowed or blocked by the fabric as the contracts say. Torn down at the end unless --keep.",
    )
    parser.add_argument("action", nargs="?", choices=["run", "down"], default="run",
                        help="run the walkthrough (default) or remove a demo left by --keep")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--keep", action="store_true", help="leave everything running to explore; prints how to "
                      "reach each part; remove it with `scripts/demo down`")
    mode.add_argument("--basic", action="store_true",
                      help="the netctl-only walkthrough on SQLite instead (python -m demo.basic; no root)")
    mode.add_argument("--services", action="store_true",
                      help="the services walkthrough instead: a VIP spreading connections over providers on two "
                      "hosts, a provider removed without breaking the others, names resolving in a container")
    mode.add_argument("--bgp", action="store_true",
                      help="the L3 mode walkthrough instead: two hosts peering over BGP with an FRR ToR, pings "
                           "routed through it, netctl bgp inspect, a peering removed and restored (docs/bgp.md)")
    args = parser.parse_args(argv)
    if args.action == "down":
        from demo import keep

        return keep.down()
    if args.basic:
        from demo import basic

        sys.argv = [sys.argv[0]]
        return basic.main()
    reason = missing_prerequisites()
    if args.bgp:
        from testbed.bgp_cluster import missing_bgp_prerequisites

        reason = reason or missing_bgp_prerequisites()
        if reason:
            print(f"scripts/demo --bgp: cannot run: {reason}", file=sys.stderr)
            return 2
        from demo import bgp

        return bgp.run()
    if reason:
        print(f"scripts/demo: cannot run the ACI walkthrough: {reason} (scripts/demo --basic needs neither)",
              file=sys.stderr)
        return 2
    if args.services:
        from demo import services

        return services.run()
    from demo import aci

    return aci.run(keep_running=args.keep)


if __name__ == "__main__":
    sys.exit(main())
