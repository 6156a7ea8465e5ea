"""Exercise the OVS driver pieces against a private OVS and print what was observed as JSON.

Run by tests/agent/test_ovs_driver.py inside a fresh network namespace (os-ken's configuration is
process-wide and a userspace OVS wants its own namespace, so this cannot run in the pytest process).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.ovs.flow import Feature, Flow, Match, Output, SetField, cookie_round, make_cookie
from agent.ovs.ofcontroller import FlowProgrammingError, OpenFlowController
from agent.ovs.ovsdb import Ovsdb
from apic_mock.leaf.ovs import OvsInstance


def main(rundir: str) -> None:
    ovs = OvsInstance(Path(rundir))
    ovs.start()
    out: dict[str, object] = {}
    try:
        ctl = OpenFlowController(Path(rundir) / "openflow.sock")
        ctl.start()
        ctl.expect_datapath(0xB0)
        db = Ovsdb(ovs.remote)
        db.ensure_bridge("br0", "netdev", ctl.target, 0xB0)
        out["connected"] = ctl.wait_connected(10)
        vsctl = lambda *a: ovs.run("ovs-vsctl", *a).strip()  # noqa: E731
        out["bridge"] = {c: vsctl("get", "Bridge", "br0", c)
                         for c in ("datapath_type", "fail_mode", "protocols")}
        out["controller"] = vsctl("get-controller", "br0")
        out["datapath_id"] = vsctl("get", "Bridge", "br0", "datapath_id")
        db.add_port("br0", "int0", 20, "internal", external_ids={"k": "v"})
        db.add_port("br0", "tun0", 1, "vxlan", options={"remote_ip": "flow", "key": "flow"})
        ports = db.wait_ofports("br0", {"int0", "tun0"})
        out["ports"] = {n: [p.ofport, p.type, p.options, p.external_ids] for n, p in ports.items()}

        good = Flow(0, 10, Match.of(in_port=20), (Output(1),), feature=Feature.CLASSIFIER)
        bad = Flow(0, 11, Match.of(ipv4_dst="10.0.0.1"))  # missing eth_type prerequisite
        try:
            ctl.apply([(good, make_cookie(1, good.feature)), (bad, make_cookie(1, bad.feature))])
            out["bad_bundle"] = "accepted"
        except FlowProgrammingError as exc:
            out["bad_bundle"] = f"rejected: {exc}"
        out["flows_after_bad_bundle"] = len(ovs.flows("br0"))

        round1 = [Flow(5, 10, Match.of(reg0=i), (SetField("reg1", i),), goto=6) for i in range(3)]
        ctl.apply([(f, make_cookie(1, f.feature)) for f in round1])
        round2 = [round1[0], Flow(5, 10, Match.of(reg0=9), goto=6)]
        ctl.apply([(f, make_cookie(2, f.feature)) for f in round2], delete_rounds=[1])
        stats = ctl.flow_stats()
        out["after_round_switch"] = sorted((s.table_id, cookie_round(s.cookie)) for s in stats)
        ctl.apply([], deletes=[round2[1]])
        out["after_strict_delete"] = len(ctl.flow_stats())

        db.set_flow_restore_wait(True)
        out["frw_set"] = db.flow_restore_wait()
        db.set_flow_restore_wait(False)
        out["frw_cleared"] = db.flow_restore_wait()
    finally:
        ovs.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
