"""Property tests: whatever DN, filter or body arrives, the mock answers 200 or an APIC-style 4xx
envelope, never a 500 and never a hang (pytest-timeout bounds every test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.apic import ApicMock

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

rn_chars = st.sampled_from(list("abcdefgtnBDuni-[]/.:_0123456789 %?#\\\"'{}()"))
dns = st.one_of(
    st.text(rn_chars, max_size=60),
    st.lists(
        st.sampled_from(
            [
                "uni",
                "tn-a",
                "BD-b",
                "ap-x",
                "epg-y",
                "[",
                "]",
                "rspathAtt-[topology/pod-1/",
                "pathep-[eth1/1]]",
                "subnet-[1.1.1.1/24]",
                "topology",
                "pod-1",
                "node-101",
                "",
            ]
        ),
        max_size=8,
    ).map("/".join),
)
filters = st.one_of(
    st.text(st.sampled_from(list('eqnotandr(),."fvBD.name 1wcard\\')), max_size=60),
    st.builds(
        lambda op, cls, prop, val: f'{op}({cls}.{prop},"{val}")',
        st.sampled_from(["eq", "ne", "lt", "gt", "le", "ge", "wcard", "bw", "anybit", "nope", "and", "not"]),
        st.sampled_from(["fvBD", "fvTenant", "x"]),
        st.sampled_from(["name", "dn", "", "a.b"]),
        st.text(max_size=8),
    ),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["fvTenant", "fvBD", "attributes", "children", "name", "dn", "status", "ip", "x"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=25,
)


@pytest.fixture
def session(apic_mock_server: ApicMock) -> Iterator[httpx.Client]:
    with apic_mock_server.client() as client:
        yield client
    apic_mock_server.admin.reset()


def assert_apic_reply(r: httpx.Response) -> None:
    assert r.status_code in (200, 400), (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body["totalCount"], str)
    assert isinstance(body["imdata"], list)
    if r.status_code == 400:
        assert set(body["imdata"][0]["error"]["attributes"]) == {"code", "text"}


@FUZZ
@given(dn=dns)
def test_any_dn(session: httpx.Client, dn: str) -> None:
    path = quote(dn, safe="/[]")
    assert_apic_reply(session.get(f"/api/mo/{path}.json"))
    assert_apic_reply(session.delete(f"/api/mo/{path}/tn-fuzz.json"))
    assert_apic_reply(session.post(f"/api/mo/{path}.json", json={"fvTenant": {"attributes": {"name": "fz"}}}))
    assert_apic_reply(session.get(f"/api/node/class/{path}/fvBD.json"))


@FUZZ
@given(text=filters)
def test_any_filter(session: httpx.Client, text: str) -> None:
    assert_apic_reply(session.get("/api/class/fvBD.json", params={"query-target-filter": text}))
    assert_apic_reply(
        session.get("/api/mo/uni.json", params={"rsp-subtree": "full", "rsp-subtree-filter": text})
    )


@FUZZ
@given(body=json_values)
def test_any_body(session: httpx.Client, body: object) -> None:
    assert_apic_reply(session.post("/api/mo/uni.json", content=json.dumps(body)))
    assert_apic_reply(session.post("/api/mo/uni/tn-fuzz.json?rsp-subtree=modified", content=json.dumps(body)))


@FUZZ
@given(
    raw=st.one_of(
        st.text(st.sampled_from(list('<>/="fvTenant name&;![]-x ')), max_size=80), st.binary(max_size=40)
    )
)
def test_any_xml_body(session: httpx.Client, raw: str | bytes) -> None:
    from xml.etree import ElementTree as ET

    r = session.post("/api/mo/uni.xml", content=raw)
    assert r.status_code in (200, 400), (r.status_code, r.text[:300])
    assert ET.fromstring(r.content).tag == "imdata"
