"""Configuration from Contiv's environment variables, and the ``aci-gw`` command: a bad setting stops
startup with one line and no traceback; a good one serves; ``--healthcheck`` probes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from aci_gw_harness import add_phys_domain, gateway_env, read_tree
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aci_gw.apic import make_client
from aci_gw.config import ConfigError, load_settings, parse_listen_url
from contiv_api.aci_gw_payload import GwConfigOverride
from testbed.aci_gw_payloads import LEAF, PATH, PHYS_DOMAIN, app_profile
from testbed.apic import ApicMock
from testbed.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"APIC_URL": "https://apic.example", "APIC_USERNAME": "admin", "APIC_PASSWORD": "pw"}


def test_contiv_variables() -> None:
    env = {**GOOD, "APIC_PHYS_DOMAIN": "pd", "APIC_LEAF_NODE": f"{LEAF},{PATH}",
           "APIC_CONTRACTS_UNRESTRICTED_MODE": "yes", "APIC_INC_COMMON_TENANT": "yes",
           "APIC_EPG_BRIDGE_DOMAIN": "bd1", "LOG_LEVEL": "debug"}
    s = load_settings(env)
    assert (s.listen_host, s.listen_port) == ("127.0.0.1", 5000)
    assert s.fabric.node_bindings == (LEAF,)
    assert s.fabric.path_bindings == (PATH,)  # APIC_LEAF_NODE entries with "pathep" are paths
    assert not s.fabric.enforce_policies
    assert s.fabric.include_common_tenant
    assert s.fabric.bridge_domain == "bd1"
    assert s.log_level == "DEBUG"
    assert s.apic.verify_tls
    assert "pw" not in repr(s.apic)
    assert load_settings({"APIC_URL": "SANITY"}).dry_run
    assert load_settings({**GOOD, "ACI_GW_TOKEN": "t0k"}).token == "t0k"
    assert load_settings({**GOOD, "ACI_GW_TOKEN": "t0k"}, token="cli").token == "cli"
    assert load_settings({**GOOD, "ACI_GW_LISTEN_URL": "0.0.0.0:5001"}).listen_port == 5001


def test_gw_config_overrides_field_by_field() -> None:
    fabric = load_settings({**GOOD, "APIC_PHYS_DOMAIN": "pd", "APIC_LEAF_NODE": LEAF}).fabric
    merged = fabric.merged(GwConfigOverride(physical_domain="other", enforce_policies=False))
    assert merged.physical_domain == "other"
    assert merged.node_bindings == (LEAF,)
    assert not merged.enforce_policies
    assert fabric.merged(None) is fabric


def _key(tmp_path: Path, kind: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" else \
        ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / f"{kind}.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "APIC_URL is not set"),
    ({"APIC_URL": "apic.example"}, "APIC_URL='apic.example': expected http(s)://host[:port]"),
    ({"APIC_URL": "https://a"}, "APIC_USERNAME is not set"),
    ({"APIC_URL": "https://a", "APIC_USERNAME": "u"}, "no APIC credentials"),
    ({**GOOD, "APIC_CERT_DN": "uni/userext/user-u/usercert-c", "APIC_LOCAL_KEY_FILE": "/nonexistent/k"},
     "APIC_LOCAL_KEY_FILE /nonexistent/k: cannot read"),
    ({**GOOD, "APIC_VERIFY_TLS": "maybe"}, "APIC_VERIFY_TLS='maybe': expected yes or no"),
    ({**GOOD, "APIC_CA_BUNDLE": "/nonexistent/ca.pem"}, "APIC_CA_BUNDLE /nonexistent/ca.pem: no such file"),
    ({**GOOD, "APIC_SDK": "soap"}, "APIC_SDK='soap'"),
    ({**GOOD, "APIC_RETRIES": "many"}, "APIC_RETRIES='many': expected a number"),
    ({**GOOD, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD'"),
    ({**GOOD, "APIC_LEAF_NODE": "leaf-101"}, "invalid node binding 'leaf-101'"),
    ({**GOOD, "APIC_CONTRACTS_UNRESTRICTED_MODE": "sometimes"}, "APIC_CONTRACTS_UNRESTRICTED_MODE"),
    ({**GOOD, "APIC_PHYS_DOMAIN": "bad name"}, "invalid physical domain name"),
])
def test_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env)


def test_keys(tmp_path: Path) -> None:
    env = {**GOOD, "APIC_CERT_DN": "uni/userext/user-u/usercert-c"}
    s = load_settings({**env, "APIC_LOCAL_KEY_FILE": _key(tmp_path, "rsa")})
    assert s.apic.uses_certificate
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_settings({**env, "APIC_LOCAL_KEY_FILE": str(garbage)})
    ec_settings = load_settings({**env, "APIC_LOCAL_KEY_FILE": _key(tmp_path, "ec")})
    with pytest.raises(ValueError, match="RSA"):
        make_client(ec_settings.apic)


def test_cobra_sdk_requested_but_missing() -> None:
    pytest.importorskip("aci_gw")  # always there; the point is the SDK below
    try:
        import cobra.mit.access  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="APIC_SDK=cobra but the cobra SDK"):
            make_client(load_settings({**GOOD, "APIC_SDK": "cobra"}).apic)
        assert make_client(load_settings({**GOOD, "APIC_SDK": "auto"}).apic).backend == "rest"
    else:
        assert make_client(load_settings({**GOOD, "APIC_SDK": "auto"}).apic).backend == "cobra"


def test_listen_url() -> None:
    assert parse_listen_url("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen_url("http://127.0.0.1:5000") == ("127.0.0.1", 5000)
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        parse_listen_url("localhost")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APIC_", "ACI_GW_"))}
    return subprocess.run([sys.executable, "-m", "aci_gw.cli", *args], env={**clean, **env,
                          "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("env", "line"), [
    ({}, "aci-gw: configuration error: APIC_URL is not set"),
    ({"APIC_URL": "https://a", "APIC_USERNAME": "u", "APIC_PASSWORD": "p", "APIC_LEAF_NODE": "x"},
     "aci-gw: configuration error: environment: invalid node binding 'x'"),
])
def test_bad_setting_stops_startup_with_one_line(env: dict[str, str], line: str) -> None:
    proc = _run(env)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(line)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr



def test_the_command_serves_and_healthchecks() -> None:
    port = free_port()
    with ApicMock.start(users={"contiv": "Zq9-distinctive-secret"}) as apic:
        add_phys_domain(apic)
        env = {**gateway_env(apic, APIC_PHYS_DOMAIN=PHYS_DOMAIN, APIC_LEAF_NODE=LEAF, LOG_LEVEL="DEBUG"),
               "ACI_GW_LISTEN_URL": f"127.0.0.1:{port}"}
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("APIC_", "ACI_GW_"))}
        proc = subprocess.Popen([sys.executable, "-m", "aci_gw.cli"], text=True,
                                env={**clean, **env, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while _run({"ACI_GW_LISTEN_URL": f"127.0.0.1:{port}"}, "--healthcheck").returncode != 0:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "aci-gw did not become healthy"
                time.sleep(0.2)
            result = httpx.post(f"http://127.0.0.1:{port}/createAppProf", json=app_profile(), timeout=30)
            assert result.json()["result"] == "success"
            assert read_tree(apic, "uni/tn-t1/ap-app1") is not None
        finally:
            proc.terminate()
            proc.wait(10)
        output = proc.stdout.read() if proc.stdout else ""
    assert "aaaLogin" in output  # DEBUG logs every APIC request...
    assert "Zq9-distinctive-secret" not in output  # ...but never a secret
    assert "APIC-cookie" not in output
    assert _run({}, "--healthcheck", "--listen-url", f"127.0.0.1:{port}").returncode == 1


def test_drift_settings_from_the_environment() -> None:
    from aci_gw.config import DriftSettings, load_drift

    assert load_drift({}) == DriftSettings(watch=True, repair=True, subscription_timeout=60, repair_interval=1.0)
    assert load_drift({"APIC_DRIFT_REPAIR": "no", "APIC_SUBSCRIPTION_TIMEOUT": "30",
                       "APIC_DRIFT_REPAIR_INTERVAL": "0.5", "APIC_DRIFT_WATCH": "yes"}) == DriftSettings(
        watch=True, repair=False, subscription_timeout=30, repair_interval=0.5)
    for env, message in (({"APIC_DRIFT_REPAIR": "maybe"}, "expected yes or no"),
                         ({"APIC_SUBSCRIPTION_TIMEOUT": "2"}, "expected 3 to 3600"),
                         ({"APIC_SUBSCRIPTION_TIMEOUT": "x"}, "expected a number"),
                         ({"APIC_DRIFT_REPAIR_INTERVAL": "-1"}, "must not be negative")):
        with pytest.raises(ConfigError, match=message):
            load_drift(env)
