"""netmaster restarted on its SQLite state: push states survive, and the first pass repairs APIC drift."""

from __future__ import annotations

from pathlib import Path

from testbed.aci_gw import AciGwProcess, apic_env
from testbed.apic import ApicMock
from testbed.netmaster import NetmasterProcess

from .conftest import ACI_GW, NODE, PHYS_DOMAIN, Apic, Netmaster, eventually


def test_restart_keeps_state_and_repairs_drift(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'netmaster.db'}"
    with ApicMock.start() as mock:
        apic = Apic(mock)
        apic.post("uni", {"physDomP": {"attributes": {"name": PHYS_DOMAIN}}})
        # The gateway's own drift watch is off here: this is netmaster's start-time push repairing drift
        # made while it was down (the watch would repair it at once; tests/aci_gw/test_drift.py).
        env = apic_env(mock, APIC_DRIFT_WATCH="no")
        with AciGwProcess.start(env, log_path=tmp_path / "aci-gw.log") as gw:
            args = ["--infra", "aci", "--aci-gw-url", gw.url, "--aci-retry-max", "1", "--log-format", "text"]
            log = tmp_path / "netmaster.log"
            with NetmasterProcess.start(store, args=args, log_path=log) as nm_process:
                nm = Netmaster(nm_process)
                nm.put("aciGws", "aciGw", **ACI_GW)
                t = nm.tenant()
                nm.network(t)
                nm.group(t, "web")
                key = nm.profile(t, "prof", "web")
                first = nm.wait_synced(key)
                nm.http.close()
            binding = f"uni/tn-{t}/ap-prof/epg-web/rsnodeAtt-[{NODE}]"
            assert binding in apic.tree(f"uni/tn-{t}")
            apic.delete(binding)  # drift while netmaster is down
            with NetmasterProcess.start(store, args=args, log_path=log) as nm_process:
                nm = Netmaster(nm_process)
                eventually(lambda: binding in apic.tree(f"uni/tn-{t}"), what="binding restored")
                again = nm.wait_synced(key)
                assert again["syncedHash"] == first["syncedHash"]
                assert again["lastSync"] > first["lastSync"]
                nm.http.close()
        apic.http.close()


def test_gateway_token_from_the_environment(tmp_path: Path) -> None:
    """aci-gw requiring a token: netmaster sends CONTIV_NETMASTER_ACI_GW_TOKEN; a wrong one is a clear failure."""
    with ApicMock.start() as mock:
        apic = Apic(mock)
        apic.post("uni", {"physDomP": {"attributes": {"name": PHYS_DOMAIN}}})
        with AciGwProcess.start(apic_env(mock), token="s3cret", log_path=tmp_path / "aci-gw.log") as gw:
            args = ["--infra", "aci", "--aci-gw-url", gw.url, "--aci-retry-max", "1"]
            for token, expect in (("wrong", "failed"), ("s3cret", "synced")):
                env = {"CONTIV_NETMASTER_ACI_GW_TOKEN": token}
                with NetmasterProcess.start("memory://", args=args, env=env, log_path=tmp_path / "nm.log") as proc:
                    nm = Netmaster(proc)
                    nm.put("aciGws", "aciGw", **ACI_GW)
                    t = nm.tenant()
                    nm.network(t)
                    nm.group(t, "web")
                    key = nm.profile(t, "prof", "web")
                    state = eventually(
                        lambda n=nm, k=key, e=expect: (s := n.sync(k)).get("state") == e and s, what=expect
                    )
                    if expect == "failed":
                        assert "refused the token" in state["reason"]
                    nm.http.close()
        apic.http.close()
