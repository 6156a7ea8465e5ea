"""The services walkthrough (``scripts/demo --services``): a VIP spreading connections, a provider removed
without breaking the others, names resolving in a container. Root; torn down at the end.

netmaster on SQLite and two simulated hosts whose agents run with ``--dns``; netctl creates a tenant, a
network and a service; containers start through the agents' endpoint API with labels (three
providers on two hosts, a client). Each check is narrated as ``<what>  ok|FAILED``; the exit status is
1 if any failed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from demo.basic import BOLD, RESET, netctl
from testbed.cluster import leftovers
from testbed.dnscheck import query
from testbed.lbcheck import Holder, NameServer, connect
from testbed.sync_cluster import SyncCluster, add_endpoint, delete_endpoint
from testbed.waiting import eventually

TENANT = "blue"
GATEWAY = "10.60.0.254"
PROVIDERS = (("web-1", 0), ("web-2", 1), ("web-3", 0))  # (container, host index)


class Narrator:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.failed += not ok
        print(f"  {what:<60} {'ok' if ok else 'FAILED'}  {detail}")


def _step(title: str) -> None:
    print(f"\n{BOLD}## {title}{RESET}")


def run() -> int:
    say = Narrator()
    with SyncCluster(n_hosts=2, agent_args=("--dns",)) as cluster, tempfile.TemporaryDirectory() as tmp:
        url = cluster.netmaster_url
        _step("A tenant, a network and a service: VIP from the network, providers chosen by label")
        for command in (f"tenant create {TENANT}", f"net create -t {TENANT} -e vxlan -s 10.60.0.0/24 -g {GATEWAY} "
                        "web-net", f"service create -t {TENANT} -s web-net -l app=web -p 80:8080:TCP web-svc"):
            netctl(url, command)
        _step("Containers start (the agents' endpoint API, as the CNI plugin calls it), providers labelled app=web")
        spaces = {}
        for name, host in (*PROVIDERS, ("client", 1)):
            spaces[name] = cluster.container(name.replace("-", ""))
            labels = {"app": "web"} if name.startswith("web") else {}
            status, body = add_endpoint(cluster.hosts[host], endpoint_id=f"{TENANT}-{name}", tenant=TENANT,
                                        network="web-net", netns=spaces[name], container_name=name, labels=labels)
            print(f"  {name:<7} on {cluster.hosts[host].name}: {body.get('ip', body)}  labels {labels}")
            if status != 200:
                return 1
        servers = [NameServer(spaces[name], name, 8080, Path(tmp)) for name, _ in PROVIDERS]
        netctl(url, f"service inspect -t {TENANT} web-svc")
        vip = _vip(cluster)
        try:
            _step(f"90 connections from the client to {vip}:80: one flow and one select group per service port")
            eventually(lambda: connect(spaces["client"], vip, 80, "tcp", 1)[0], timeout=15, what="the VIP answers")
            counts, failed = connect(spaces["client"], vip, 80, "tcp", 90)
            say.check("every connection answered", failed == 0, f"{failed} failed")
            say.check("spread over the three providers", len(counts) == 3, str(dict(counts)))

            _step("A long-lived connection; then web-2 is removed (its container stops)")
            holder, kept = _holder_not_on(spaces["client"], vip, "web-2")
            delete_endpoint(cluster.hosts[1], f"{TENANT}-web-2")
            before = len(holder.answers())
            time.sleep(2)
            later = holder.answers()[before:]
            say.check(f"the connection to {kept} goes on", bool(later) and all("name" in x for x in later),
                      f"{len(later)} answers since the removal")
            holder.stop()
            counts, failed = connect(spaces["client"], vip, 80, "tcp", 60)
            say.check("no new connection reaches web-2", failed == 0 and "web-2" not in counts, str(dict(counts)))

            _step("Names, from the client container (its DNS goes to the agent, redirected by flows)")
            for name, want in (("web-svc", [vip]), ("web-1.blue.contiv", [_ip(cluster, "web-1")]),
                               ("web-2.blue.contiv", [])):
                got = query(spaces["client"], name, "A", GATEWAY)
                answers = got.get("answers", [])
                say.check(f"{name} -> {', '.join(want) or 'no such name'}", answers == want,
                          f"{got['rcode']} {answers}")
        finally:
            for server in servers:
                server.stop()
    left = leftovers(cluster.prefix)
    say.check("nothing left behind (namespaces, links, files)", not left, str(left))
    print(f"\n{BOLD}Done{RESET}: {'all as expected' if not say.failed else f'{say.failed} checks FAILED'}; "
          "everything is torn down.")
    return 1 if say.failed else 0


def _vip(cluster: SyncCluster) -> str:
    import httpx

    reply = httpx.get(f"{cluster.netmaster_url}/api/v1/inspect/serviceLBs/{TENANT}:web-svc/", timeout=10)
    return str(reply.json()["Oper"]["serviceVip"])


def _ip(cluster: SyncCluster, name: str) -> str:
    import httpx

    reply = httpx.get(f"{cluster.netmaster_url}/api/v1/endpoints/{TENANT}-{name}/", timeout=10)
    return str(reply.json()["ipAddress"])


def _holder_not_on(ns: str, vip: str, avoid: str) -> tuple[Holder, str]:
    """A long-lived connection through the VIP that did not land on *avoid*."""
    for _ in range(20):
        holder = Holder(ns, vip, 80, 30)
        eventually(holder.answers, timeout=10, what="the held connection answers")
        name = str(holder.answers()[0].get("name"))
        if name != avoid:
            return holder, name
        holder.stop()
    raise RuntimeError(f"every long-lived connection landed on {avoid}")


def main() -> int:
    return run()


if __name__ == "__main__":
    sys.exit(main())

