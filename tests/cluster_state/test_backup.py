"""Issue 5 backup and move: ``netmaster export`` / ``netmaster import`` as real processes on real stores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from netmaster.backup.state import BATCH, BackupError, export_state, import_state, parse_document
from netmaster.store.memory import MemoryStore
from netmaster.store.sqlite import SqliteStore
from testbed.etcd import shared_etcd
from testbed.netmaster import NetmasterProcess
from testbed.rest import Api

REPO = Path(__file__).resolve().parents[2]
PLURALS = ("tenants", "networks", "endpointGroups", "policys", "rules", "appProfiles", "globals")


def netmaster_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netmaster", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def build_state(api: Api) -> None:
    """Tenants, networks of both encaps, groups (one with an address pool), policies, rules, endpoints."""
    for t in ("prod", "dev"):
        api.ok(api.post("tenants", t, tenantName=t))
        api.network(t, "web", "10.10.1.0/24" if t == "prod" else "10.20.1.0/24")
        api.network(t, "db", "10.10.2.0/24" if t == "prod" else "10.20.2.0/24", encap="vlan")
        api.ok(api.post("policys", f"{t}:p", tenantName=t, policyName="p"))
        for rule_id, port in (("1", 80), ("2", 443)):
            body = {"tenantName": t, "policyName": "p", "ruleId": rule_id, "direction": "in", "action": "allow",
                    "protocol": "tcp", "port": port}  # fmt: skip
            api.ok(api.post("rules", f"{t}:p:{rule_id}", body))
        api.group(t, "web", "front", policies=["p"])
        api.group(t, "db", "store", ipPool=("10.10.2.100-10.10.2.120" if t == "prod" else "10.20.2.100-10.20.2.120"))
        api.ok(api.post("appProfiles", f"{t}:app", tenantName=t, appProfileName="app", endpointGroups=["front"]))
        for i in range(5):
            api.ok(api.endpoint(f"{t}-w{i}", t, "web", groupName="front", host="h1", containerID=f"c{t}w{i}"))
            api.ok(api.endpoint(f"{t}-d{i}", t, "db", groupName="store", host="h2", containerID=f"c{t}d{i}"))
        api.ok(api.endpoint(f"{t}-plain", t, "web", host="h1"))
    api.ok(api.endpoint("prod-w0", "prod", "web", groupName="front", host="h1", containerID="cprodw0"))
    api.ok(api.http.delete("/api/v1/endpoints/dev-w3/"))  # a released address must stay free


def observe(api: Api) -> dict[str, Any]:
    """Everything a client can read: every list, every object's inspect, endpoints and their inspect."""
    seen: dict[str, Any] = {}
    for plural in PLURALS:
        items = api.ok(api.get(plural))
        seen[plural] = items
        for item in items:
            seen[f"inspect {plural} {item['key']}"] = api.inspect(plural, item["key"])
    endpoints = api.ok(api.http.get("/api/v1/endpoints"))
    seen["endpoints"] = endpoints
    for ep in endpoints:
        seen[f"inspect ep {ep['endpointID']}"] = api.inspect("endpoints", ep["endpointID"])
    return seen


def test_sqlite_deployment_moves_to_etcd(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/nm.db"
    with NetmasterProcess.start(sqlite_url, log_path=tmp_path / "sqlite-nm.log") as nm:
        api = Api(nm.url)
        build_state(api)
        before = observe(api)
        # Exported while netmaster runs: the export opens the file read-only and leaves the running
        # netmaster's leased keys (leader, members) alone.
        exported = netmaster_cli("export", "--cluster-store", sqlite_url)
        assert exported.returncode == 0, exported.stderr
        assert httpx.get(nm.url + "/info").json()["leader"] is not None
    doc = json.loads(exported.stdout)
    assert doc["format"] == "contiv-netmaster-state"
    assert doc["version"] == 1
    assert doc["revision"] > 0
    exported_keys = [e["key"] for e in doc["keys"]]
    assert not [k for k in exported_keys if k.startswith(("/contiv/leader", "/contiv/members/", "/contiv/agents/"))]
    assert "/contiv/ep/prod-w0" in exported_keys
    assert "/contiv/ep/dev-w3" not in exported_keys
    assert f"exported {len(exported_keys)} keys at revision {doc['revision']}" in exported.stderr

    etcd = shared_etcd()
    etcd.wipe()
    imported = netmaster_cli("import", "--cluster-store", etcd.url, stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    assert f"imported {len(exported_keys)} keys" in imported.stderr
    again = netmaster_cli("import", "--cluster-store", etcd.url, stdin=exported.stdout)
    assert again.returncode == 1
    assert "already holds netmaster state" in again.stderr

    with NetmasterProcess.start(etcd.url, log_path=tmp_path / "etcd-nm.log") as nm:
        api = Api(nm.url)
        after = observe(api)
        assert after.keys() == before.keys()
        for what in before:
            assert after[what] == before[what], what

        # Allocation goes on where the SQLite deployment stopped: no address, VLAN, VNI or EPG id twice.
        used_ips = {(ep["tenantName"], ep["networkName"], ep["ipAddress"]) for ep in before["endpoints"]}
        for t in ("prod", "dev"):
            for i in range(20):
                ep = api.ok(api.endpoint(f"{t}-new{i}", t, "web", groupName="front", host="h3"))
                key = (t, "web", ep["ipAddress"])
                assert key not in used_ips, f"address {key} handed out twice"
                used_ips.add(key)
        # VLANs, VNIs and local VLANs of every network: a new network must get fresh ones.
        def tags(key: str, encap: str) -> set[tuple[str, str, int]]:
            oper = api.inspect("networks", key)["Oper"]
            return {(encap, "pktTag", oper["pktTag"]), (encap, "externalPktTag", oper["externalPktTag"])}

        used_tags = set().union(*(tags(n["key"], n["encap"]) for n in before["networks"]))
        group_ids = {api.inspect("endpointGroups", g["key"])["Oper"]["endpointGroupId"]
                     for g in before["endpointGroups"]}  # fmt: skip
        api.network("prod", "extra", "10.10.9.0/24")
        api.network("prod", "extra-vlan", "10.10.8.0/24", encap="vlan")
        assert not tags("prod:extra", "vxlan") & used_tags
        assert not tags("prod:extra-vlan", "vlan") & used_tags
        api.group("prod", "web", "newgroup")
        assert api.inspect("endpointGroups", "prod:newgroup")["Oper"]["endpointGroupId"] not in group_ids


async def test_memory_sqlite_round_trip_in_batches(tmp_path: Path) -> None:
    """More keys than one etcd transaction may hold; memory -> SQLite -> memory gives the same keys."""
    source = MemoryStore()
    for i in range(3 * BATCH + 7):
        await source.put(f"/contiv/obj/tenant/t{i:04}", json.dumps({"config": {"tenantName": f"t{i}"}, "status": {}}))
    lease = await source.lease_grant(30)
    await source.put("/contiv/agents/h1", "{}", lease=lease)
    await source.put("/contiv/leader", "{}", lease=lease)
    doc = await export_state(source)
    assert len(doc["keys"]) == 3 * BATCH + 7

    target = SqliteStore(tmp_path / "copy.db")
    try:
        result = await import_state(target, parse_document(json.dumps(doc)))
        assert result.written == 3 * BATCH + 7
        back = MemoryStore()
        await import_state(back, parse_document(json.dumps(await export_state(target))))
        kvs, _ = await back.list("/contiv/")
        original, _ = await source.list("/contiv/obj/")
        assert [(kv.key, json.loads(kv.value)) for kv in kvs] == [(kv.key, json.loads(kv.value)) for kv in original]

        # --force replaces the previous state entirely (no key of it survives).
        await target.put("/contiv/obj/tenant/stray", "{}")
        small = {**doc, "keys": doc["keys"][:2]}
        with pytest.raises(BackupError, match="already holds netmaster state"):
            await import_state(target, parse_document(json.dumps(small)))
        replaced = await import_state(target, parse_document(json.dumps(small)), replace=True)
        assert replaced.deleted == 3 * BATCH + 8
        kvs, _ = await target.list("/contiv/")
        assert [kv.key for kv in kvs] == [e["key"] for e in small["keys"]]
    finally:
        await target.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not a JSON document"),
        ('{"format": "something-else", "version": 1, "keys": []}', "not a netmaster export"),
        ('{"format": "contiv-netmaster-state", "version": 99, "keys": []}', "unsupported export version 99"),
        ('{"format": "contiv-netmaster-state", "version": 1, "keys": {}}', '"keys" must be a list'),
        ('{"format": "contiv-netmaster-state", "version": 1, "keys": [{"key": "/other/x", "value": 1}]}',
         "is not a netmaster key"),
        ('{"format": "contiv-netmaster-state", "version": 1, "keys": [{"key": "/contiv/leader", "value": 1}]}',
         "belongs to a running process"),
        ('{"format": "contiv-netmaster-state", "version": 1, "keys": '
         '[{"key": "/contiv/obj/tenant/a", "value": 1}, {"key": "/contiv/obj/tenant/a", "value": 2}]}',
         "appears twice"),
    ],
)  # fmt: skip
def test_bad_document_is_refused_and_nothing_written(tmp_path: Path, text: str, message: str) -> None:
    url = f"sqlite:///{tmp_path}/target.db"
    # A valid first half must not be written either: validation happens before any write.
    result = netmaster_cli("import", "--cluster-store", url, stdin=text)
    assert result.returncode == 22
    assert message in result.stderr
    assert "nothing was written" in result.stderr
    assert not (tmp_path / "target.db").exists()


def test_export_of_a_missing_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    result = netmaster_cli("export", "--cluster-store", f"sqlite:///{tmp_path}/none.db")
    assert result.returncode == 22
    assert "none.db" in result.stderr
    assert result.stdout == ""


def test_watch_from_a_revision_the_store_never_reached_is_410() -> None:
    """After a move the new store's revisions start low: a watcher must re-list, not wait for its old one."""
    with NetmasterProcess.start("memory://") as nm:
        current = httpx.get(nm.url + "/api/v1/snapshot").json()["revision"]
        resp = httpx.get(nm.url + "/api/v1/watch", params={"since": current + 1000})
        assert resp.status_code == 410
        assert "store was replaced" in resp.json()["error"]
        with httpx.stream("GET", nm.url + "/api/v1/watch", params={"since": current}) as ok:
            assert ok.status_code == 200


def test_netctl_export_through_the_api_needs_the_token(tmp_path: Path) -> None:
    env = {"CONTIV_NETMASTER_TOKEN": "s3cret"}
    with NetmasterProcess.start(f"sqlite:///{tmp_path}/nm.db", env=env) as nm:
        api = Api(nm.url)
        api.http.headers["Authorization"] = "Bearer s3cret"
        api.ok(api.post("tenants", "exported", tenantName="exported"))
        assert httpx.get(nm.url + "/api/v1/export").status_code == 401
        netctl = [sys.executable, "-m", "netmaster.cli.netctl", "--netmaster", nm.url]
        result = subprocess.run(
            [*netctl, "--token", "s3cret", "export", "-f", str(tmp_path / "state.json")],
            capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        doc = json.loads((tmp_path / "state.json").read_text())
        assert "/contiv/obj/tenant/exported" in [e["key"] for e in doc["keys"]]
        assert f"exported {len(doc['keys'])} keys" in result.stderr
    # The document imports like one written by 'netmaster export'.
    copy = f"sqlite:///{tmp_path}/copy.db"
    imported = netmaster_cli("import", "--cluster-store", copy, "-f", str(tmp_path / "state.json"))
    assert imported.returncode == 0, imported.stderr
