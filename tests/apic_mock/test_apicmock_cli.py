"""The ``apic-mock`` command run as a real process: options, persistence, seeds, TLS files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from apicmock_helpers import attrs_of, mo

from testbed.apic import ApicMock

ROOT = Path(__file__).resolve().parents[2]


def test_help_explains_the_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "apic_mock.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    for option in (
        "--listen",
        "--http",
        "--cert",
        "--key",
        "--ca-out",
        "--user",
        "--state",
        "--seed",
        "--accept-unsigned",
        "--refresh-timeout",
    ):
        assert option in out


def test_bad_options_fail_cleanly(tmp_path: Path) -> None:
    for args in (["--user", "nocolon"], ["--listen", "nowhere"], ["--cert", str(tmp_path / "c.pem")]):
        proc = subprocess.run(
            [sys.executable, "-m", "apic_mock.cli", *args], capture_output=True, text=True, cwd=ROOT
        )
        assert proc.returncode == 2, args
    bad_seed = tmp_path / "seed.json"
    bad_seed.write_text(json.dumps({"imdata": [{"fvNope": {"attributes": {"dn": "uni/x-1"}}}]}))
    proc = subprocess.run(
        [sys.executable, "-m", "apic_mock.cli", "--seed", str(bad_seed), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "unknown managed object class fvNope" in proc.stderr
    bad_seed.write_text("{nope")
    proc = subprocess.run(
        [sys.executable, "-m", "apic_mock.cli", "--seed", str(bad_seed), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "cannot load" in proc.stderr


def test_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with ApicMock.start(subprocess=True, state=state, users={"admin": "pw1"}) as apic, apic.client() as c:
        assert (
            c.post(
                "/api/mo/uni.json",
                json=mo("fvTenant", {"name": "kept", "descr": "persist me"}, mo("fvAp", {"name": "a"})),
            ).status_code
            == 200
        )
        assert (
            c.post("/api/mo/uni/userext.json", json=mo("aaaUser", {"name": "ops", "pwd": "x1"})).status_code
            == 200
        )
        assert c.delete("/api/mo/uni/tn-mgmt.json").status_code == 400
        c.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "dropped"}))
        c.delete("/api/mo/uni/tn-dropped.json")
    assert state.exists()
    with ApicMock.start(subprocess=True, state=state, users={"admin": "pw2"}) as apic:
        with apic.client() as c:  # the CLI's password wins over the stored one
            tenant = attrs_of(c.get("/api/mo/uni/tn-kept.json").json()["imdata"][0])
            assert tenant["descr"] == "persist me"
            assert c.get("/api/mo/uni/tn-kept/ap-a.json").json()["totalCount"] == "1"
            assert c.get("/api/mo/uni/tn-dropped.json").json()["totalCount"] == "0"
            assert c.get("/api/mo/topology/pod-1/node-101.json").json()["totalCount"] == "1"
        login = {"aaaUser": {"attributes": {"name": "ops", "pwd": "x1"}}}
        assert (
            httpx.post(f"{apic.url}/api/aaaLogin.json", json=login, verify=apic.ssl_context()).status_code
            == 200
        )


def test_seed_file_http_and_users(tmp_path: Path) -> None:
    seed = tmp_path / "fabric.json"
    nodes = [
        mo(
            "fabricNode",
            {"dn": f"topology/pod-1/node-{n}", "id": str(n), "role": "leaf"},
            mo("topSystem", {"id": str(n), "role": "leaf", "address": f"10.0.0.{n}"}),
        )
        for n in (301, 302)
    ]
    seed.write_text(json.dumps({"totalCount": "2", "imdata": nodes}))
    with ApicMock.start(
        subprocess=True, http=True, seed=seed, demo_fabric=False, users={"u1": "p1", "u2": "p2"}
    ) as apic:
        assert apic.url.startswith("http://")
        assert apic.ca_file is None
        with apic.client() as c:
            r = c.get('/api/class/topSystem.json?query-target-filter=eq(topSystem.role,"leaf")').json()
            assert sorted(attrs_of(i)["address"] for i in r["imdata"]) == ["10.0.0.301", "10.0.0.302"]
            assert c.get("/api/mo/topology/pod-1/node-101.json").json()["totalCount"] == "0"  # no demo fabric
        login = {"aaaUser": {"attributes": {"name": "u2", "pwd": "p2"}}}
        assert httpx.post(f"{apic.url}/api/aaaLogin.json", json=login).status_code == 200


def test_https_needs_the_ca_and_logs_no_secrets(tmp_path: Path) -> None:
    with ApicMock.start(
        subprocess=True, users={"admin": "S3cr3t-pw"}, extra_args=["--log-level", "debug"]
    ) as apic:
        assert apic.ca_file is not None
        assert "BEGIN CERTIFICATE" in Path(apic.ca_file).read_text()
        try:
            httpx.get(f"{apic.url}/mock/health", verify=True)
            raise AssertionError("the mock's certificate must not be trusted without its CA")
        except httpx.ConnectError:
            pass
        with apic.client() as c:
            token = c.cookies["APIC-cookie"]
            c.get("/api/mo/uni.json")
        stderr = apic.workdir / "stderr.log"
    logs = stderr.read_text()
    assert '"msg": "request"' in logs  # structured access log lines are there...
    assert token not in logs  # ...without the token
    assert "S3cr3t-pw" not in logs


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed server certificate, as a user might bring with --cert/--key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from testbed.certs import cert_pem, key_pem, self_signed

    key = ec.generate_private_key(ec.SECP256R1())
    cert_file, key_file = directory / "my.pem", directory / "my.key"
    cert_file.write_text(cert_pem(self_signed(key, "my-apic", server_ip="127.0.0.1")))
    key_file.write_bytes(key_pem(key))
    return cert_file, key_file


def test_custom_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with ApicMock.start(subprocess=True, extra_args=["--cert", str(cert), "--key", str(key)]) as apic:
        assert apic.ca_file is not None
        assert Path(apic.ca_file).read_bytes() == cert.read_bytes()  # --ca-out hands out the given cert
        with apic.client() as c:
            assert c.get("/api/mo/uni.json").status_code == 200


def test_websocket_tokens_and_cookies_never_reach_the_log() -> None:
    """The session token is the websocket path (``/socket<token>``); uvicorn logs that path at info
    level and the request headers (cookies) at debug level. Neither may be written in clear."""
    import ssl
    import time

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with ApicMock.start(subprocess=True, extra_args=["--log-level", "debug"]) as apic, apic.client() as client:
        log = apic.workdir / "stderr.log"
        token = client.cookies["APIC-cookie"]
        tls = apic.ssl_context()
        assert tls is not None
        tls.maximum_version = ssl.TLSVersion.TLSv1_2  # see test_apicmock_subscriptions.ws_ssl
        wss = apic.url.replace("https://", "wss://")
        with connect(f"{wss}/socket{token}", ssl=tls, open_timeout=10,
                     additional_headers={"Cookie": f"APIC-cookie={token}"}):
            pass
        with pytest.raises(InvalidStatus):  # a refused token is logged too: also masked
            connect(f"{wss}/socketNotAValidTokenButSecretLooking", ssl=tls, open_timeout=10)
        deadline = time.monotonic() + 10
        while '"WebSocket /socket<token>\\" 403' not in log.read_text():
            assert time.monotonic() < deadline, "uvicorn never logged the refused websocket"
            time.sleep(0.05)
        text = log.read_text()
    assert token not in text
    assert "NotAValidTokenButSecretLooking" not in text
    assert '"WebSocket /socket<token>\\" [accepted]' in text, text[-2000:]
    assert "cookie: <masked>" in text.lower()
