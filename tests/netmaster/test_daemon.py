"""The netmaster process: restart on SQLite, startup errors, token, version/info, watch stream."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import httpx

from testbed.netmaster import NetmasterProcess
from testbed.ports import free_port
from testbed.rest import Api, expect_error


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "netmaster", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def test_restart_on_sqlite_keeps_objects_and_allocations(tmp_path) -> None:
    store = f"sqlite://{tmp_path}/state/netmaster.db"
    with NetmasterProcess.start(store) as nm:
        api = Api(nm.url)
        api.network("default", "net", "10.30.0.0/24", gateway="10.30.0.1")
        api.network("default", "vx", "10.31.0.0/24")
        api.group("default", "net", "web")
        ips = [api.ok(api.endpoint(f"ep{i}", "default", "net", groupName="web"))["ipAddress"] for i in range(3)]
        epg_id = api.inspect("endpointGroups", "default:web")["Oper"]["endpointGroupId"]
        vni = api.inspect("networks", "default:vx")["Oper"]["externalPktTag"]
        api.ok(api.http.delete("/api/v1/endpoints/ep1/"))
        nm.stop(signal.SIGKILL)  # no clean shutdown: the database must still be consistent
    with NetmasterProcess.start(store) as nm:
        api = Api(nm.url)
        assert (
            api.inspect("networks", "default:net")["Oper"]["allocatedIPAddresses"] == "10.30.0.1-10.30.0.2, 10.30.0.4"
        )
        assert api.ok(api.http.get("/api/v1/endpoints/ep2/"))["ipAddress"] == ips[2]
        api.group("default", "net", "db")
        assert api.inspect("endpointGroups", "default:db")["Oper"]["endpointGroupId"] != epg_id
        api.network("default", "vx2", "10.32.0.0/24")
        assert api.inspect("networks", "default:vx2")["Oper"]["externalPktTag"] != vni
        # The freed address is reused, the others are not handed out again.
        assert api.ok(api.endpoint("ep9", "default", "net"))["ipAddress"] == ips[1]
        assert api.ok(api.endpoint("ep10", "default", "net"))["ipAddress"] == "10.30.0.5"


def test_bad_store_url_is_one_line() -> None:
    r = _run("--cluster-store", "mysql://x", "--listen-url", f"127.0.0.1:{free_port()}")
    assert r.returncode == 22
    assert r.stderr.strip().startswith("netmaster: error: invalid store URL 'mysql://x'")
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unwritable_state_dir_is_one_line(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    r = _run("--cluster-store", f"sqlite://{tmp_path}/file/sub/db", "--listen-url", f"127.0.0.1:{free_port()}")
    assert r.returncode != 0
    assert "cannot open state database" in r.stderr
    assert "Traceback" not in r.stderr


def test_busy_port_is_one_line(tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _run("--cluster-store", "memory://", "--listen-url", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


def test_env_variables_and_help() -> None:
    r = _run("--help")
    assert "CONTIV_NETMASTER_" in r.stdout
    assert "--cluster-store" in r.stdout
    r = _run(env={"CONTIV_NETMASTER_CLUSTER_STORE": "bogus://", "CONTIV_NETMASTER_LISTEN_URL": "127.0.0.1:1"})
    assert "invalid store URL 'bogus://'" in r.stderr


def test_token_protects_the_api() -> None:
    with NetmasterProcess.start(env={"CONTIV_NETMASTER_TOKEN": "s3cret"}) as nm:
        expect_error(httpx.get(nm.url + "/api/v1/tenants/"), 401, "bearer token")
        expect_error(httpx.get(nm.url + "/api/v1/tenants/", headers={"Authorization": "Bearer nope"}), 401, "token")
        ok = httpx.get(nm.url + "/api/v1/tenants/", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert httpx.get(nm.url + "/healthz").status_code == 200
        info = httpx.get(nm.url + "/info", headers={"Authorization": "Bearer s3cret"}).json()
        assert "s3cret" not in json.dumps(info)


def test_version_info_docs_metrics(api: Api) -> None:
    assert api.ok(api.http.get("/version"))["program"] == "netmaster"
    assert api.ok(api.http.get("/info"))["current-state"] == "leader"
    schema = api.ok(api.http.get("/openapi.json"))
    assert "/api/v1/policys/{key}/" in schema["paths"]
    assert "/api/v1/Bgps/{key}/" in schema["paths"]
    assert api.http.get("/docs").status_code == 200
    api.ok(api.get("tenants"))
    metrics = api.http.get("/metrics").text
    assert 'netmaster_http_requests_total{method="GET",route="/api/v1/tenants/",status="200"}' in metrics


def test_snapshot_then_watch_delivers_every_change(api: Api) -> None:
    t = api.tenant()
    snap = api.ok(api.http.get("/api/v1/snapshot"))
    assert any(o["kind"] == "tenant" and o["key"] == t for o in snap["objects"])
    since = snap["revision"]
    seen: list[dict] = []
    done = threading.Event()

    def follow() -> None:
        with httpx.stream("GET", f"{api.url}/api/v1/watch", params={"since": since}, timeout=10) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                event = json.loads(line)
                if event["type"] != "bookmark":
                    seen.append(event)
                if len(seen) == 4:
                    done.set()
                    return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    api.network(t, "net", "10.40.0.0/24")
    api.group(t, "net", "g")
    api.ok(api.endpoint(f"{t}-w", t, "net", groupName="g"))
    api.ok(api.http.delete(f"/api/v1/endpoints/{t}-w/"))
    assert done.wait(10), seen
    assert [(e["type"], e["kind"]) for e in seen] == [
        ("put", "network"),
        ("put", "endpointGroup"),
        ("put", "endpoint"),
        ("delete", "endpoint"),
    ]
    assert seen[0]["status"]["externalPktTag"] > 0
    assert seen[2]["object"]["groupName"] == "g"
    revisions = [e["revision"] for e in seen]
    assert revisions == sorted(revisions)
    assert revisions[0] > since


def test_watch_from_compacted_revision_is_410() -> None:
    with NetmasterProcess.start() as nm:
        api = Api(nm.url)
        api.network("default", "n", "10.0.0.0/16")
        # The memory store keeps the last 10,000 events: churn past that with create/delete pairs.
        for _i in range(5100):
            api.http.post("/api/v1/endpoints/", json={"endpointID": "churn", "networkName": "n"})
            api.http.delete("/api/v1/endpoints/churn/")
        expect_error(api.http.get("/api/v1/watch", params={"since": 1}), 410, "compacted")
