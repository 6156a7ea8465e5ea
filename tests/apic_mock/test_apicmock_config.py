"""Configuration: POST placement and merge semantics, status values, rsp-subtree=modified, DELETE,
APIC error codes and texts, and robustness against hostile input."""

from __future__ import annotations

import json

import httpx
import pytest
from apicmock_helpers import attrs_of, error_of, mo, tenant_tree

EMPTY = {"totalCount": "0", "imdata": []}


def get_attrs(api: httpx.Client, dn: str) -> dict[str, str] | None:
    body = api.get(f"/api/mo/{dn}.json").json()
    return attrs_of(body["imdata"][0]) if body["imdata"] else None


def test_post_returns_empty_envelope_and_creates_tree(api: httpx.Client) -> None:
    r = api.post("/api/mo/uni.json", json=tenant_tree("t1"))
    assert r.status_code == 200
    assert r.json() == EMPTY
    entry = get_attrs(api, "uni/tn-t1/flt-filt-c1/e-entry-ip-tcp-80")
    assert entry is not None
    assert (entry["prot"], entry["dFromPort"], entry["etherT"]) == ("tcp", "http", "ip")  # canonicalised
    assert entry["sFromPort"] == "unspecified"  # defaults filled in
    assert get_attrs(api, "uni/tn-t1/BD-BD-net")["arpFlood"] == "no"  # type: ignore[index]


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/mo/uni.json", mo("fvTenant", {"name": "x"})),  # child of the URL (acitoolkit)
        ("/api/mo/uni/tn-x.json", mo("fvTenant", {"name": "x"})),  # the object's own URL (ansible)
        ("/api/mo/uni/tn-x.json", mo("fvTenant", {})),  # own URL, naming from the URL
        ("/api/node/mo/.json", mo("fvTenant", {"dn": "uni/tn-x", "name": "x"})),  # root with dn (GUI)
        ("/api/mo.json", mo("fvTenant", {"dn": "uni/tn-x"})),  # aciClient posts to mo.json
        ("/api/mo/uni.json", mo("polUni", {}, mo("fvTenant", {"name": "x"}))),  # parent wrapper
        ("/api/mo.json", [mo("fvTenant", {"dn": "uni/tn-x"})]),  # a JSON list (aciClient snapshot)
    ],
)
def test_where_a_posted_object_lands(api: httpx.Client, url: str, body: object) -> None:
    r = api.post(url, json=body)
    assert r.status_code == 200, r.text
    assert get_attrs(api, "uni/tn-x") is not None


def test_post_with_cobra_status_and_no_content_type(api: httpx.Client) -> None:
    body = {
        "fvTenant": {
            "attributes": {"name": "t1", "status": "created,modified"},
            "children": [{"fvCtx": {"attributes": {"name": "t1-Vrf", "status": "created,modified"}}}],
        }
    }
    r = api.post("/api/mo/uni/tn-t1.json", content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert get_attrs(api, "uni/tn-t1/ctx-t1-Vrf") is not None


def test_merge_keeps_unmentioned_props_and_siblings(api: httpx.Client) -> None:
    api.post("/api/mo/uni.json", json=tenant_tree("t1"))
    r = api.post(
        "/api/mo/uni/tn-t1.json",
        json=mo(
            "fvTenant", {"name": "t1", "descr": "first"}, mo("fvBD", {"name": "BD-net", "arpFlood": "yes"})
        ),
    )
    assert r.status_code == 200
    bd = get_attrs(api, "uni/tn-t1/BD-BD-net")
    assert bd is not None
    assert bd["arpFlood"] == "yes"
    assert bd["unicastRoute"] == "yes"
    assert get_attrs(api, "uni/tn-t1/ap-app") is not None  # sibling untouched
    assert get_attrs(api, "uni/tn-t1/BD-BD-net/subnet-[20.1.1.254/24]") is not None
    api.post("/api/mo/uni/tn-t1.json", json=mo("fvTenant", {"annotation": "orchestrator:contiv"}))
    tenant = get_attrs(api, "uni/tn-t1")
    assert tenant is not None
    assert (tenant["descr"], tenant["annotation"]) == ("first", "orchestrator:contiv")


def test_status_values(api: httpx.Client) -> None:
    api.post("/api/mo/uni.json", json=tenant_tree("t1"))
    r = api.post("/api/mo/uni/tn-t1.json", json=mo("fvTenant", {"name": "t1", "status": "created"}))
    assert r.status_code == 400
    assert error_of(r) == ("103", "Cannot create Tenant (fvTenant); object uni/tn-t1 already exists.")
    r = api.post(
        "/api/mo/uni/tn-t1/BD-BD-net.json", json=mo("fvRsCtx", {"tnFvCtxName": "x", "status": "created"})
    )
    assert error_of(r) == (
        "103",
        "Cannot create Private Network (fvRsCtx); object uni/tn-t1/BD-BD-net/rsctx already exists.",
    )
    r = api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "nope", "status": "modified"}))
    assert error_of(r)[0] == "102"
    r = api.post(
        "/api/mo/uni/tn-t1.json", json=mo("fvTenant", {"name": "t1", "descr": "m", "status": "modified"})
    )
    assert r.status_code == 200
    # status deleted inside a parent tree (acitoolkit) and at the object's URL (Cobra)
    r = api.post(
        "/api/mo/uni/tn-t1.json",
        json=mo("fvTenant", {"name": "t1"}, mo("fvAp", {"name": "app", "status": "deleted"})),
    )
    assert r.status_code == 200
    assert get_attrs(api, "uni/tn-t1/ap-app") is None
    assert get_attrs(api, "uni/tn-t1/ap-app/epg-web") is None
    r = api.post("/api/mo/uni/tn-t1/BD-BD-net.json", json=mo("fvBD", {"name": "BD-net", "status": "deleted"}))
    assert r.status_code == 200
    assert get_attrs(api, "uni/tn-t1/BD-BD-net") is None
    # deleting something absent is a no-op
    r = api.post("/api/mo/uni/tn-t1.json", json=mo("fvAp", {"name": "ghost", "status": "deleted"}))
    assert r.json() == EMPTY
    r = api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "t1", "status": "deleted,created"}))
    assert error_of(r)[0] == "120"


def test_rsp_subtree_modified(api: httpx.Client) -> None:
    r = api.post(
        "/api/mo/uni/tn-m.json?rsp-subtree=modified",
        json=mo("fvTenant", {"name": "m"}, mo("fvAp", {"name": "a"})),
    )
    body = r.json()
    assert body["totalCount"] == "1"
    tenant = body["imdata"][0]["fvTenant"]
    assert tenant["attributes"]["dn"] == "uni/tn-m"
    assert tenant["attributes"]["status"] == "created"
    ap = next(c for c in tenant["children"] if "fvAp" in c)
    assert attrs_of(ap)["rn"] == "ap-a"
    assert attrs_of(ap)["status"] == "created"
    # the same POST again changes nothing: empty imdata (ansible's "changed: false")
    r = api.post(
        "/api/mo/uni/tn-m.json?rsp-subtree=modified",
        json=mo("fvTenant", {"name": "m"}, mo("fvAp", {"name": "a"})),
    )
    assert r.json() == EMPTY
    r = api.post(
        "/api/mo/uni/tn-m.json?rsp-subtree=modified",
        json=mo("fvTenant", {"name": "m"}, mo("fvAp", {"name": "a", "descr": "d"})),
    )
    tenant = r.json()["imdata"][0]["fvTenant"]
    assert tenant["attributes"] == {"dn": "uni/tn-m", "status": ""}  # unchanged ancestor
    assert tenant["children"] == [
        {"fvAp": {"attributes": {"descr": "d", "rn": "ap-a", "status": "modified"}}}
    ]
    r = api.post(
        "/api/mo/uni/tn-m.json?rsp-subtree=modified",
        json=mo("fvTenant", {"name": "m"}, mo("fvAp", {"name": "a", "status": "deleted"})),
    )
    ap = r.json()["imdata"][0]["fvTenant"]["children"][0]
    assert ap == {"fvAp": {"attributes": {"rn": "ap-a", "status": "deleted"}}}
    r = api.delete("/api/mo/uni/tn-m.json?rsp-subtree=modified")
    assert r.json()["imdata"] == [{"fvTenant": {"attributes": {"dn": "uni/tn-m", "status": "deleted"}}}]


def test_rsp_subtree_full_on_post(api: httpx.Client) -> None:
    r = api.post(
        "/api/mo/uni.json?rsp-subtree=full", json=mo("fvTenant", {"name": "f"}, mo("fvAp", {"name": "a"}))
    )
    item = r.json()["imdata"][0]["fvTenant"]
    assert item["attributes"]["dn"] == "uni/tn-f"
    assert any("fvAp" in c for c in item["children"])


def test_delete(api: httpx.Client) -> None:
    api.post("/api/mo/uni.json", json=tenant_tree("t1"))
    dn = "uni/tn-t1/ap-app/epg-web/rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]"
    assert api.delete(f"/api/mo/{dn}.json").json() == EMPTY
    assert get_attrs(api, dn) is None
    assert get_attrs(api, "uni/tn-t1/ap-app/epg-web") is not None
    assert api.delete("/api/node/mo/uni/tn-t1.json").json() == EMPTY
    assert api.get("/api/class/fvAEPg.json").json()["totalCount"] == "0"  # whole subtree gone
    assert api.delete("/api/mo/uni/tn-t1.json").status_code == 200  # absent: still 200
    r = api.delete("/api/mo/uni/bogus-x.json")
    assert r.status_code == 400
    assert error_of(r)[0] == "104"
    assert api.delete("/api/mo/uni/tn-common.json").status_code == 400  # system tenant
    assert get_attrs(api, "uni/tn-common") is not None


def test_bracketed_dns_round_trip(api: httpx.Client) -> None:
    api.post("/api/mo/uni.json", json=tenant_tree("t1"))
    epg = "uni/tn-t1/ap-app/epg-web"
    target = "topology/pod-1/protpaths-101-102/pathep-[vpc-ipg]"
    r = api.post(f"/api/mo/{epg}.json", json=mo("fvRsPathAtt", {"tDn": target, "encap": "vlan-200"}))
    assert r.status_code == 200
    dn = f"{epg}/rspathAtt-[{target}]"
    attrs = get_attrs(api, dn)
    assert attrs is not None
    assert attrs["dn"] == dn
    assert attrs["encap"] == "vlan-200"
    r = api.post(f"/api/mo/{dn}.json", json=mo("fvRsPathAtt", {"mode": "untagged"}))
    assert r.status_code == 200
    assert get_attrs(api, dn)["mode"] == "untagged"  # type: ignore[index]
    r = api.post(
        "/api/mo/uni/infra.json",
        json=mo(
            "fvnsVlanInstP",
            {"name": "pool", "allocMode": "static"},
            mo("fvnsEncapBlk", {"from": "vlan-100", "to": "vlan-200"}),
        ),
    )
    assert r.status_code == 200
    assert get_attrs(api, "uni/infra/vlanns-[pool]-static/from-[vlan-100]-to-[vlan-200]") is not None
    r = api.post(
        "/api/mo/uni/tn-t1.json", json=mo("tagAnnotation", {"key": "orchestrator", "value": "contiv"})
    )
    assert r.status_code == 200
    assert get_attrs(api, "uni/tn-t1/annotationKey-[orchestrator]")["value"] == "contiv"  # type: ignore[index]


def test_missing_parent_is_102(api: httpx.Client) -> None:
    r = api.post("/api/mo/uni/tn-customera/BD-VLAN_NEW.json", json=mo("fvBD", {"name": "VLAN_NEW"}))
    assert r.status_code == 400
    assert error_of(r) == ("102", "configured object ((Dn0)) not found Dn0=uni/tn-customera/BD-VLAN_NEW, ")


@pytest.mark.parametrize(
    ("url", "body", "code", "text"),
    [
        ("/api/mo/uni.json", mo("fvFoobar", {"name": "x"}), "122", "unknown managed object class fvFoobar"),
        (
            "/api/mo/uni.json",
            mo("fvTenant", {"name": "x"}, mo("fvFoo", {})),
            "122",
            "unknown managed object class fvFoo",
        ),
        (
            "/api/mo/uni.json",
            mo("fvTenant", {"name": "x", "a": "1"}),
            "400",
            "unknown attribute 'a' in element 'fvTenant'",
        ),
        (
            "/api/mo/uni.json",
            mo("fvTenant", {"name": "x"}, mo("fvCtx", {"name": "v", "pcEnfPref": "sometimes"})),
            "120",
            "unknown property value sometimes, name pcEnfPref, class fvCtx [(Dn0)] Dn0=uni/tn-x/ctx-v, ",
        ),
        (
            "/api/mo/uni.json",
            mo("fvTenant", {"name": "x", "descr": "This is an [invalid] description"}),
            "801",
            "property descr of uni/tn-x failed validation for value 'This is an [invalid] description'",
        ),
        (
            "/api/mo/uni.json",
            mo("fvTenant", {"name": "bad name!"}),
            "801",
            "property name of uni failed validation for value 'bad name!'",
        ),
        ("/api/mo/uni.json", mo("fvTenant", {"name": "x" * 65}), "801", None),
        ("/api/mo/uni/bogus-1.json", mo("fvTenant", {"name": "x"}), "104", "Invalid RN bogus-1"),
        (
            "/api/mo/uni.json",
            mo("fvAEPg", {"name": "e"}),
            "400",
            "Invalid request. Can not contain child 'epg-e' under parent 'uni'",
        ),
        (
            "/api/mo/uni.json",
            {"fvTenant": {"children": [], "attributes": {"name": "x"}}},
            "400",
            "invalid data at line '1'. Attributes are missing, tag 'attributes' must be specified first, "
            "before any other tag",
        ),
        ("/api/mo/uni.json", {"fvTenant": {"children": []}}, "400", None),
        (
            "/api/mo/uni.json",
            mo("fvTenant", {"name": "x"}, mo("fvBD", {"name": "b"}, mo("fvSubnet", {"ip": "not-an-ip"}))),
            "801",
            None,
        ),
        (
            "/api/mo/uni.json",
            mo(
                "fvTenant",
                {"name": "x"},
                mo(
                    "fvAp",
                    {"name": "a"},
                    mo(
                        "fvAEPg",
                        {"name": "e"},
                        mo(
                            "fvRsPathAtt",
                            {"tDn": "topology/pod-1/paths-101/pathep-[eth1/1]", "encap": "vlan-5000"},
                        ),
                    ),
                ),
            ),
            "801",
            None,
        ),
        ("/api/mo/uni.json", mo("fvTenant", {}), "400", None),  # no naming value
        ("/api/mo/uni.json", mo("fabricNode", {"dn": "topology/pod-1/node-999", "id": "999"}), "122", None),
        ("/api/mo/uni.json", {"fvTenant": {"attributes": {"name": ["x"]}}}, "400", None),
        ("/api/mo/uni.json", {"fvTenant": {"attributes": {"name": "x"}, "children": {}}}, "400", None),
        ("/api/mo/uni.json", {"a": {"attributes": {}}, "b": {"attributes": {}}}, "400", None),
        ("/api/mo/uni.json", [], "400", None),
        ("/api/mo/uni.json", "just a string", "400", None),
    ],
)
def test_apic_error_codes(api: httpx.Client, url: str, body: object, code: str, text: str | None) -> None:
    r = api.post(url, json=body)
    assert r.status_code == 400, r.text
    got_code, got_text = error_of(r)
    assert got_code == code, got_text
    if text is not None:
        assert got_text == text


def test_failed_post_changes_nothing(api: httpx.Client) -> None:
    body = mo(
        "fvTenant",
        {"name": "atomic"},
        mo("fvAp", {"name": "a"}),
        mo("fvCtx", {"name": "v", "pcEnfPref": "x"}),
    )
    assert api.post("/api/mo/uni.json", json=body).status_code == 400
    assert get_attrs(api, "uni/tn-atomic") is None
    api.post("/api/mo/uni.json", json=mo("fvTenant", {"name": "atomic", "descr": "before"}))
    body2 = [
        mo("fvTenant", {"dn": "uni/tn-atomic", "descr": "after"}),
        mo("fvAp", {"dn": "uni/tn-atomic/ap-gone", "status": "deleted"}),
        mo("fvTenant", {"dn": "uni/tn-x", "zz": "1"}),  # fails after the first two were applied
    ]
    assert api.post("/api/mo.json", json=body2).status_code == 400
    assert get_attrs(api, "uni/tn-atomic")["descr"] == "before"  # type: ignore[index]
    api.post("/api/mo/uni/tn-atomic.json", json=mo("fvAp", {"name": "kept"}))
    undo_delete = [mo("fvAp", {"dn": "uni/tn-atomic/ap-kept", "status": "deleted"}), mo("fvNope", {})]
    assert api.post("/api/mo.json", json=undo_delete).status_code == 400
    assert get_attrs(api, "uni/tn-atomic/ap-kept") is not None  # a delete is undone too


def test_malformed_json(api: httpx.Client) -> None:
    for raw in (b"{", b'{"fvTenant": {"attributes": {"name": "x"}}', b"\xff\xfe", b"", b"nul", b"[1, 2,]"):
        r = api.post("/api/mo/uni.json", content=raw)
        assert r.status_code == 400, raw
        code, text = error_of(r)
        assert code == "400"
        assert "JSON parsing failed" in text or "invalid data" in text


def test_huge_body_is_refused(api: httpx.Client) -> None:
    big = {"fvTenant": {"attributes": {"name": "x", "descr": "a" * (9 * 1024 * 1024)}}}
    r = api.post("/api/mo/uni.json", json=big)
    assert r.status_code == 400
    assert "too large" in error_of(r)[1]

    def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(10):
            yield b" " * (1024 * 1024)

    r = api.post("/api/mo/uni.json", content=chunks())
    assert r.status_code == 400
    assert api.get("/api/mo/uni.json").status_code == 200  # still serving


def test_deep_nesting_is_refused(api: httpx.Client) -> None:
    raw = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # deeper than Python's recursion limit
    r = api.post("/api/mo/uni.json", content=raw)
    assert r.status_code == 400
    node: dict = mo("tagInst", {"name": "leaf"})
    for i in range(60):
        node = mo("tagInst", {"name": f"n{i}"}, node)
    r = api.post("/api/mo/uni/tn-common.json", json=node)
    assert r.status_code == 400
    assert "nesting" in error_of(r)[1]
    assert api.get("/api/class/tagInst.json").json()["totalCount"] == "0"


@pytest.mark.parametrize(
    "dn",
    [
        "uni/tn-a]",
        "uni/[",
        "uni/tn-a/BD-b/[x]",
        "x" * 5000,
        "uni/tn-a/ap-b/epg-c/rspathAtt-[oops",
        "%ff%fe",
        "uni/tn-a//BD-b",
        "topology/pod-1/node-1/../../uni",
    ],
)
def test_garbage_dns_get_104(api: httpx.Client, dn: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        r = api.request(
            method, f"/api/mo/{dn}.json", json=mo("fvTenant", {"name": "a"}) if method == "POST" else None
        )
        assert r.status_code == 400, (method, dn, r.text)
        assert error_of(r)[0] == "104"


def test_read_only_classes_cannot_be_posted(api: httpx.Client) -> None:
    api.post("/api/mo/uni.json", json=tenant_tree("t1"))
    r = api.post("/api/mo/uni/tn-t1/ap-app/epg-web.json", json=mo("fvCEp", {"mac": "00:11:22:33:44:55"}))
    assert r.status_code == 400
    assert api.delete("/api/mo/topology/pod-1/node-101.json").status_code == 400


def test_operational_props_posted_back_are_ignored(api: httpx.Client) -> None:
    api.post("/api/mo/uni.json", json=tenant_tree("t1"))
    read = api.get("/api/mo/uni/tn-t1/BD-BD-net/rsctx.json").json()["imdata"][0]
    r = api.post("/api/mo/uni/tn-t1/BD-BD-net/rsctx.json", json=read)  # GET then POST back, all props
    assert r.status_code == 200, r.text
