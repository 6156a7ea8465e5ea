"""A real third-party APIC client from PyPI (aciClient 1.9) against the mock, over HTTPS.

aciClient hard-codes ``https://`` and passes ``verify=False`` per request, so it works against the
mock's generated certificate even with ``REQUESTS_CA_BUNDLE`` set.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests
from aciClient.aci import ACI
from apicmock_helpers import attrs_of, mo
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from testbed.apic import ApicMock
from testbed.certs import cert_pem, key_pem, self_signed

# aciClient turns certificate verification off by design; that is its business, not a test finding.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def aci(apic_mock: ApicMock) -> ACI:
    client = ACI(apic_mock.host_port, apic_mock.username, apic_mock.password)
    assert client.login() is True
    return client


def test_login_refresh_query_create_delete(apic_mock: ApicMock, aci: ACI) -> None:
    first = aci.getToken()
    assert aci.renewCookie() is True
    assert aci.getToken() != first
    imdata = aci.getJson("mo/uni/tn-common.json")
    assert attrs_of(imdata[0])["dn"] == "uni/tn-common"
    body = mo(
        "fvTenant",
        {"dn": "uni/tn-aciclient", "name": "aciclient"},
        mo("fvAp", {"name": "app"}, mo("fvAEPg", {"name": "web"}, mo("fvRsBd", {"tnFvBDName": "bd"}))),
    )
    assert aci.postJson(body) == 200
    imdata = aci.getJson('class/fvAEPg.json?query-target-filter=eq(fvAEPg.name,"web")')
    assert [attrs_of(i)["dn"] for i in imdata] == ["uni/tn-aciclient/ap-app/epg-web"]
    assert aci.deleteMo("uni/tn-aciclient") == 200
    assert aci.getJson("mo/uni/tn-aciclient.json") == []
    aci.logout()
    stats = apic_mock.admin.stats()
    assert stats["by_path"]["POST /api/aaaLogout.json"] == 1


def test_errors_come_back_as_apic_texts(aci: ACI) -> None:
    assert aci.postJson(mo("fvFoobar", {"dn": "uni/x"})) == "400: unknown managed object class fvFoobar"
    assert aci.getJson("class/fvTenantt.json") == "Request failed, unresolved class for fvTenantt"


def test_bad_password_returns_false(apic_mock: ApicMock) -> None:
    assert ACI(apic_mock.host_port, apic_mock.username, "wrong").login() is False


def test_paging_fallback_on_too_big(apic_mock: ApicMock, aci: ACI) -> None:
    assert apic_mock.service is not None
    apic_mock.service.engine.max_result = 5
    try:
        imdata = aci.getJson("class/fabricPathEp.json")  # 96 ports > 5: aciClient pages by itself
    finally:
        apic_mock.service.engine.max_result = 100_000
    assert len(imdata) == 96


def test_subscribe_and_refresh(aci: ACI) -> None:
    reply = aci.subscribe("class/fvTenant.json", timeout=30, query_parameters=[])
    assert reply["totalCount"] == "3"  # common, infra, mgmt
    assert aci.subscription_refresh(reply["subscriptionId"]) == {"totalCount": "0", "imdata": []}


# --- aciClient's certificate client ----------------------------------------------------------------


@pytest.fixture
def cert_files(tmp_path: Path, apic_mock: ApicMock) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "user.key"
    key_file.write_bytes(key_pem(key))
    pem = cert_pem(self_signed(key, "aciclient"))
    with apic_mock.client() as c:
        r = c.post(
            "/api/mo/uni/userext.json",
            json=mo("aaaUser", {"name": "cc"}, mo("aaaUserCert", {"name": "cc", "data": pem})),
        )
        assert r.status_code == 200
    return key_file, "uni/userext/user-cc/usercert-cc"


def test_real_cert_client(apic_mock: ApicMock, cert_files: tuple[Path, str]) -> None:
    from OpenSSL import crypto

    if not hasattr(crypto, "sign"):
        pytest.skip(
            "installed pyOpenSSL removed crypto.sign, which aciClient's ACICert calls (emulated below)"
        )
    from aciClient.aciCertClient import ACICert

    client = ACICert(apic_mock.host_port, str(cert_files[0]), cert_files[1])
    assert attrs_of(client.getJson("mo/uni/tn-common.json")[0])["name"] == "common"


def _aciclient_cookies(key_file: Path, cert_dn: str, content: str) -> dict[str, str]:
    """What ``ACICert.packCookies`` sends, with ``cryptography`` in place of the removed pyOpenSSL call."""
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    sig = base64.b64encode(key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    return {
        "APIC-Certificate-Fingerprint": "fingerprint",
        "APIC-Certificate-Algorithm": "v1.0",
        "APIC-Certificate-DN": cert_dn,
        "APIC-Request-Signature": sig,
    }


def test_cert_client_wire_format(apic_mock: ApicMock, cert_files: tuple[Path, str]) -> None:
    key_file, cert_dn = cert_files
    base = f"https://{apic_mock.host_port}/api/"
    uri = "mo/uni/tn-common.json"
    r = requests.get(
        base + uri, cookies=_aciclient_cookies(key_file, cert_dn, "GET/api/" + uri), verify=False
    )
    assert r.status_code == 200
    # aciClient signs json.dumps(body) but sends json.dumps(body, sort_keys=True): with keys out of
    # order the signature cannot match, which strict mode reports and --accept-unsigned tolerates.
    body = {"fvTenant": {"attributes": {"name": "cc", "dn": "uni/tn-cc"}}}
    cookies = _aciclient_cookies(key_file, cert_dn, "POST/api/mo.json" + json.dumps(body))
    r = requests.post(base + "mo.json", data=json.dumps(body, sort_keys=True), cookies=cookies, verify=False)
    assert r.status_code == 403
    body = {
        "fvTenant": {"attributes": {"dn": "uni/tn-cc", "name": "cc"}}
    }  # already sorted: signature matches
    cookies = _aciclient_cookies(key_file, cert_dn, "POST/api/mo.json" + json.dumps(body))
    r = requests.post(base + "mo.json", data=json.dumps(body, sort_keys=True), cookies=cookies, verify=False)
    assert r.status_code == 200
    uri = "mo/uni/tn-cc.json"
    r = requests.delete(
        base + uri, cookies=_aciclient_cookies(key_file, cert_dn, "DELETE/api/" + uri), verify=False
    )
    assert r.status_code == 200


def test_requests_keeps_verification_on_with_the_ca_file(apic_mock: ApicMock) -> None:
    """The recommended setup: give clients ``ca_file`` instead of turning verification off."""
    session = requests.Session()
    login = {"aaaUser": {"attributes": {"name": apic_mock.username, "pwd": apic_mock.password}}}
    assert (
        session.post(f"{apic_mock.url}/api/aaaLogin.json", json=login, verify=apic_mock.ca_file).status_code
        == 200
    )
    r = session.get(f"{apic_mock.url}/api/mo/uni/tn-common.json", verify=apic_mock.ca_file)
    assert attrs_of(r.json()["imdata"][0])["dn"] == "uni/tn-common"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{apic_mock.url}/api/aaaListDomains.json", verify=True)  # not trusted without the CA
