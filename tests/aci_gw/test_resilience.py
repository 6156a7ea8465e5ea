"""The APIC session under stress, against apic_mock: certificate login, token expiry in the middle of a
push, refresh before expiry, 5xx, latency and dropped connections injected by the mock, and an APIC
that stays down (a clear failure and nothing half-written)."""

from __future__ import annotations

import datetime
import socket
import threading
import time

import pytest
from aci_gw_harness import RunningGateway, add_phys_domain, gateway_env, read_tree, user_post, writes
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from testbed.aci_gw_payloads import LEAF, PHYS_DOMAIN, app_profile
from testbed.apic import ApicMock
from testbed.waiting import eventually

ENV = {"APIC_PHYS_DOMAIN": PHYS_DOMAIN, "APIC_LEAF_NODE": LEAF}


def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    value = gw.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def _key_and_cert(tmp_path, cn: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_file = tmp_path / f"{cn}.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(key_file), cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_login_signs_every_request(apic, start_gateway, tmp_path) -> None:
    key_file, pem = _key_and_cert(tmp_path, "contiv")
    user_post(apic, "uni/userext", {"aaaUser": {"attributes": {"name": "contiv"}, "children": [
        {"aaaUserCert": {"attributes": {"name": "gw", "data": pem}}}]}})
    apic.admin.reset_stats()
    gw = start_gateway(APIC_USERNAME="contiv", APIC_PASSWORD="", APIC_LOCAL_KEY_FILE=key_file,
                       APIC_CERT_DN="uni/userext/user-contiv/usercert-gw", **ENV)
    assert gw.create(app_profile())["result"] == "success"
    assert gw.create(app_profile())["changes"] == 0
    stats = apic.admin.stats()
    assert not [e for e in stats["log"] if e["path"].startswith("/api/aaa")], "no login with a certificate"
    assert gw.http.get("/healthz").json()["auth"] == "certificate"
    assert read_tree(apic, "uni/tn-t1/ap-app1") is not None


def test_certificate_with_the_wrong_key_is_refused(apic, start_gateway, tmp_path) -> None:
    _, pem = _key_and_cert(tmp_path, "contiv")
    other_key, _ = _key_and_cert(tmp_path, "other")
    user_post(apic, "uni/userext", {"aaaUser": {"attributes": {"name": "contiv"}, "children": [
        {"aaaUserCert": {"attributes": {"name": "gw", "data": pem}}}]}})
    apic.admin.reset_stats()
    gw = start_gateway(APIC_USERNAME="contiv", APIC_CERT_DN="uni/userext/user-contiv/usercert-gw",
                       APIC_LOCAL_KEY_FILE=other_key, **ENV)
    result = gw.create(app_profile())
    assert result["result"] == "failed"
    assert "403" in result["info"]
    assert "nothing was written" in result["info"]
    assert writes(apic) == 0
    assert gw.http.get("/healthz").status_code == 503


def test_wrong_password_is_a_clear_failure(apic, start_gateway) -> None:
    gw = start_gateway(APIC_PASSWORD="not-the-password", **ENV)
    result = gw.create(app_profile())
    assert result["result"] == "failed"
    assert f"APIC login as {apic.username} failed" in result["info"]
    assert "not-the-password" not in result["info"]
    assert writes(apic) == 0


def test_token_expiry_mid_push_logs_in_again(apic, gateway: RunningGateway) -> None:
    assert gateway.create(app_profile(app="warmup"))["result"] == "success"  # holds a token now
    # the drift watch's subscription of t1 reads the same DN: let it happen before the fault is set
    eventually(lambda: "t1" in gateway.gateway.drift_status()["watchedTenants"], what="t1 watched")
    apic.admin.inject_fault("latency", delay_ms=600, path=r"^/api/mo/uni/tn-t1\.json$", method="GET", count=1)
    results: list[dict] = []
    pusher = threading.Thread(target=lambda: results.append(gateway.create(app_profile())))
    pusher.start()
    time.sleep(0.3)  # the push is inside its read of the tenant
    assert apic.admin.expire_tokens() >= 1
    pusher.join(30)
    assert results, "the push did not finish"
    assert results[0]["result"] == "success", results
    assert metric(gateway, "aci_gw_apic_retries_total", reason="token") >= 1
    assert metric(gateway, "aci_gw_apic_logins_total", kind="password", result="ok") >= 2
    assert read_tree(apic, "uni/tn-t1/ap-app1/epg-db") is not None


def test_token_is_refreshed_before_it_expires(tmp_path) -> None:
    with ApicMock.start(refresh_timeout=4) as short:
        add_phys_domain(short)
        short.admin.reset_stats()
        gw = RunningGateway(gateway_env(short, **ENV))
        try:
            assert gw.create(app_profile())["result"] == "success"
            time.sleep(2.2)  # past half the token's lifetime, well before its end
            assert gw.create(app_profile())["changes"] == 0
            time.sleep(2.2)
            assert gw.create(app_profile())["changes"] == 0
            by_path = short.admin.stats(log=False)["by_path"]
            assert by_path.get("GET /api/aaaRefresh.json", 0) >= 2
            assert by_path.get("POST /api/aaaLogin.json", 0) == 1
            assert metric(gw, "aci_gw_apic_retries_total", reason="token") == 0
        finally:
            gw.stop()


def test_5xx_is_retried_and_the_push_converges(apic, gateway: RunningGateway) -> None:
    apic.admin.inject_fault("error", status=503, method="POST", path=r"^/api/mo/", count=2)
    apic.admin.inject_fault("error", status=500, method="GET", path=r"^/api/mo/", count=1)
    result = gateway.create(app_profile())
    assert result["result"] == "success", result
    assert metric(gateway, "aci_gw_apic_retries_total", reason="5xx") == 3
    assert metric(gateway, "aci_gw_apic_requests_total", method="POST", status="503") == 2
    assert gateway.create(app_profile())["changes"] == 0


def test_latency_beyond_the_timeout_is_retried(apic, start_gateway) -> None:
    gw = start_gateway(APIC_TIMEOUT="0.5", **ENV)
    assert gw.http.get("/healthz").status_code == 200  # logged in before the slow period
    apic.admin.inject_fault("latency", delay_ms=1500, path=r"^/api/mo/", count=2)
    started = time.monotonic()
    result = gw.create(app_profile())
    assert result["result"] == "success", result
    assert metric(gw, "aci_gw_apic_retries_total", reason="connection") >= 2  # more if the box is slow
    assert time.monotonic() - started < 20
    assert gw.create(app_profile())["changes"] == 0


def test_moderate_latency_only_slows_the_push(apic, gateway: RunningGateway) -> None:
    apic.admin.inject_fault("latency", delay_ms=200, path=r"^/api/")
    started = time.monotonic()
    assert gateway.create(app_profile())["result"] == "success"
    assert time.monotonic() - started >= 0.4  # one read and one write, each delayed
    assert metric(gateway, "aci_gw_apic_retries_total", reason="connection") == 0


def test_dropped_connections_are_retried(apic, gateway: RunningGateway) -> None:
    apic.admin.inject_fault("reset", path=r"^/api/mo/", count=2)
    assert gateway.create(app_profile())["result"] == "success"
    assert metric(gateway, "aci_gw_apic_retries_total", reason="connection") == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_apic_that_stays_down_fails_clearly_and_writes_nothing(apic, gateway: RunningGateway,
                                                                 method: str) -> None:
    assert gateway.create(app_profile(app="other", epgs=None))["result"] == "success"
    before = read_tree(apic, "uni/tn-t1")
    apic.admin.inject_fault("error", status=503, method=method, path=r"^/api/mo/")
    result = gateway.create(app_profile(tenant="t1", app="app1"))
    assert result["result"] == "failed"
    assert "HTTP 503 after 4 attempts" in result["info"]
    apic.admin.clear_faults()
    after = read_tree(apic, "uni/tn-t1")
    assert [c.rn for c in after.children] == [c.rn for c in before.children]
    assert after.child("ap-app1") is None
    assert gateway.http.get("/healthz").status_code == 200
    assert gateway.create(app_profile(tenant="t1", app="app1"))["result"] == "success"


def test_unreachable_apic(start_gateway) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = start_gateway(APIC_URL=f"https://127.0.0.1:{port}", **ENV)
    result = gw.create(app_profile())
    assert result["result"] == "failed"
    assert "unreachable after 4 attempts" in result["info"]
    health = gw.http.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"


def test_tls_is_verified_by_default(apic, start_gateway) -> None:
    untrusting = start_gateway(APIC_CA_BUNDLE="", **ENV)  # the mock's CA is not in the system store
    result = untrusting.create(app_profile())
    assert result["result"] == "failed"
    assert "TLS verification" in result["info"]
    assert "APIC_CA_BUNDLE" in result["info"]
    assert metric(untrusting, "aci_gw_apic_retries_total", reason="connection") == 0
    assert writes(apic) == 0
    trusting_everything = start_gateway(APIC_CA_BUNDLE="", APIC_VERIFY_TLS="no", **ENV)
    assert trusting_everything.create(app_profile())["result"] == "success"


def test_concurrent_pushes_to_one_tenant_are_serialised(apic, gateway: RunningGateway) -> None:
    from testbed.aci_gw_payloads import epg

    bodies = [app_profile(app=f"app{i}", epgs=[epg(f"e{i}", 1100 + i)], contracts=[]) for i in range(4)]
    results: list[dict] = []
    threads = [threading.Thread(target=lambda b=b: results.append(gateway.create(b))) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r["result"] for r in results] == ["success"] * 4
    tenant = read_tree(apic, "uni/tn-t1")
    assert sorted(c.rn for c in tenant.children_of("fvAp")) == [f"ap-app{i}" for i in range(4)]
    apic.admin.reset_stats()
    for body in bodies:
        assert gateway.create(body)["changes"] == 0
