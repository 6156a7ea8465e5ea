"""Queries: URL forms, the reply envelope and every query option."""

from __future__ import annotations

import httpx
import pytest
from apicmock_helpers import attrs_of, error_of, mo, tenant_tree

EMPTY = {"totalCount": "0", "imdata": []}


@pytest.fixture
def tenant(api: httpx.Client) -> httpx.Client:
    assert api.post("/api/mo/uni.json", json=tenant_tree("t1")).status_code == 200
    return api


def test_envelope_shape_and_initial_objects(api: httpx.Client) -> None:
    r = api.get("/api/mo/uni/tn-common.json")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["totalCount", "imdata"]
    assert body["totalCount"] == "1"
    item = body["imdata"][0]
    assert list(item) == ["fvTenant"]
    assert "children" not in item["fvTenant"]  # never an empty children list
    attrs = attrs_of(item)
    assert attrs["dn"] == "uni/tn-common"
    assert attrs["name"] == "common"
    assert "rn" not in attrs
    assert all(isinstance(v, str) for v in attrs.values())
    for dn in (
        "uni",
        "uni/tn-infra",
        "uni/tn-mgmt",
        "uni/tn-common/brc-default",
        "uni/infra",
        "topology/pod-1",
        "uni/tn-common/ctx-default",
        "uni/tn-common/BD-default",
        "uni/vmmp-VMware",
    ):
        assert api.get(f"/api/mo/{dn}.json").json()["totalCount"] == "1", dn


def test_missing_dn_is_empty_200_but_bad_dn_is_400(api: httpx.Client) -> None:
    assert api.get("/api/mo/uni/tn-nope.json").json() == EMPTY
    assert api.get("/api/node/mo/uni/tn-nope/BD-x.json").json() == EMPTY
    r = api.get("/api/mo/fabricNode.json")
    assert r.status_code == 400
    assert error_of(r)[0] == "104"
    for garbage in ("uni/tn-a]", "uni/xyz-1", "uni/tn-a/[[[", "%00%ff", "uni/tn-a/BD-b/nonsense"):
        r = api.get(f"/api/mo/{garbage}.json")
        assert r.status_code == 400, garbage
        assert error_of(r)[0] == "104"


def test_children_carry_rn_not_dn(tenant: httpx.Client) -> None:
    body = tenant.get("/api/mo/uni/tn-t1/BD-BD-net.json?rsp-subtree=children").json()
    children = body["imdata"][0]["fvBD"]["children"]
    rns = sorted(attrs_of(c)["rn"] for c in children)
    assert rns == ["rsctx", "subnet-[20.1.1.254/24]"]
    assert all("dn" not in attrs_of(c) for c in children)


def test_url_forms(tenant: httpx.Client) -> None:
    assert tenant.get("/api/node/mo/uni/tn-t1.json").json()["totalCount"] == "1"
    assert tenant.get("/api/node/class/fvTenant.json").json()["totalCount"] == "4"
    assert tenant.get("/api/class/fvTenant.json").json()["totalCount"] == "4"
    r = tenant.get("/api/node/class/uni/tn-t1/fvAEPg.json")
    assert [attrs_of(i)["dn"] for i in r.json()["imdata"]] == ["uni/tn-t1/ap-app/epg-web"]
    assert tenant.get("/api/mo/uni/tn-[t1].json").json()["totalCount"] == "1"  # brackets tolerated
    dn = "uni/tn-t1/ap-app/epg-web/rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]"
    assert tenant.get(f"/api/mo/{dn}.json").json()["totalCount"] == "1"
    encoded = dn.replace("/", "%2F").replace("[", "%5B").replace("]", "%5D")
    assert tenant.get(f"/api/mo/{encoded}.json").json()["totalCount"] == "1"
    assert tenant.get("/api/fvTenant.json").status_code == 400
    assert tenant.get("/api/mo/uni.yaml").status_code == 400


def test_unknown_class_is_unresolved(api: httpx.Client) -> None:
    r = api.get("/api/class/fvTenantt.json")
    assert r.status_code == 400
    assert error_of(r)[1] == "Request failed, unresolved class for fvTenantt"


def test_query_target(tenant: httpx.Client) -> None:
    r = tenant.get("/api/mo/uni/tn-t1.json?query-target=children").json()
    classes = {next(iter(i)) for i in r["imdata"]}
    assert {"fvCtx", "fvBD", "fvAp", "vzFilter", "vzBrCP", "fvEpTags"} <= classes
    assert all("dn" in attrs_of(i) for i in r["imdata"])  # targets are top level: dn
    r = tenant.get("/api/mo/uni/tn-t1/ap-app.json?query-target=subtree").json()
    dns = [attrs_of(i)["dn"] for i in r["imdata"]]
    assert dns[0] == "uni/tn-t1/ap-app"
    assert "uni/tn-t1/ap-app/epg-web/rsbd" in dns
    r = tenant.get("/api/mo/uni/tn-t1.json?query-target=subtree&target-subtree-class=fvSubnet,fvRsBd").json()
    assert sorted(next(iter(i)) for i in r["imdata"]) == ["fvRsBd", "fvSubnet"]
    r = tenant.get("/api/class/fvAp.json?query-target=subtree&target-subtree-class=fvAEPg").json()
    assert r["totalCount"] == "1"
    assert tenant.get("/api/mo/uni.json?query-target=bogus").status_code == 400


def test_query_target_filter(tenant: httpx.Client) -> None:
    tenant.post("/api/mo/uni.json", json=tenant_tree("t2"))
    q = '/api/class/fvTenant.json?query-target-filter=eq(fvTenant.name,"t2")'
    assert [attrs_of(i)["name"] for i in tenant.get(q).json()["imdata"]] == ["t2"]
    # percent-encoded and raw spellings give the same answer
    r = tenant.get("/api/class/fvTenant.json", params={"query-target-filter": 'eq(fvTenant.name,"t2")'})
    assert r.json()["totalCount"] == "1"
    q = '/api/class/fvCtx.json?query-target-filter=wcard(fvCtx.dn,"tn-t1/")'
    assert tenant.get(q).json()["totalCount"] == "1"
    q = (
        "/api/class/fvTenant.json?query-target-filter="
        'and(wcard(fvTenant.name,"^t"),not(eq(fvTenant.name,"t1")))'
    )
    assert [attrs_of(i)["name"] for i in tenant.get(q).json()["imdata"]] == ["t2"]
    q = '/api/class/fvTenant.json?query-target-filter=or(eq(fvTenant.name,"t1"),eq(fvTenant.name,"mgmt"))'
    assert tenant.get(q).json()["totalCount"] == "2"
    q = '/api/class/topSystem.json?query-target-filter=and(eq(topSystem.role,"leaf"))'
    assert sorted(attrs_of(i)["id"] for i in tenant.get(q).json()["imdata"]) == ["101", "102"]
    q = '/api/class/fabricNode.json?query-target-filter=bw(fabricNode.id,"100","150")'
    assert tenant.get(q).json()["totalCount"] == "2"
    q = '/api/class/fabricNode.json?query-target-filter=gt(fabricNode.id,"101")'
    assert tenant.get(q).json()["totalCount"] == "2"  # 102 and 201, compared as numbers
    q = '/api/class/fvRsCtx.json?query-target-filter=eq(fvRsCtx.state,"formed")'
    assert tenant.get(q).json()["totalCount"] == "3"  # t1, t2 and common/BD-default: state is filterable
    r = tenant.get('/api/class/fvTenant.json?query-target-filter=eq(fvTenant.name,"t1"')
    assert r.status_code == 400


def test_rsp_subtree_and_class(tenant: httpx.Client) -> None:
    item = tenant.get("/api/mo/uni/tn-t1.json?rsp-subtree=full").json()["imdata"][0]
    epg = next(c for c in item["fvTenant"]["children"] if "fvAp" in c)["fvAp"]["children"][0]
    assert {next(iter(c)) for c in epg["fvAEPg"]["children"]} >= {"fvRsBd", "fvRsProv", "fvRsPathAtt"}
    q = "/api/mo/uni/tn-t1.json?rsp-subtree=full&rsp-subtree-class=fvRsBd,fvRsBDToFhs"
    item = tenant.get(q).json()["imdata"][0]
    ap = item["fvTenant"]["children"]
    assert len(ap) == 1  # only the path to fvRsBd survives
    assert attrs_of(ap[0]["fvAp"]["children"][0]["fvAEPg"]["children"][0])["rn"] == "rsbd"
    q = "/api/mo/uni/tn-t1.json?rsp-subtree=children&rsp-subtree-class=fvBD"
    children = tenant.get(q).json()["imdata"][0]["fvTenant"]["children"]
    assert [next(iter(c)) for c in children] == ["fvBD"]
    assert "children" not in children[0]["fvBD"]
    q = "/api/mo/uni/tn-t1.json?rsp-subtree=children&rsp-subtree-class=fvCEp"
    assert "children" not in tenant.get(q).json()["imdata"][0]["fvTenant"]
    q = '/api/mo/uni/tn-t1.json?rsp-subtree=full&rsp-subtree-filter=eq(fvSubnet.ip,"20.1.1.254/24")'
    bd = tenant.get(q).json()["imdata"][0]["fvTenant"]["children"]
    assert [next(iter(c)) for c in bd] == ["fvBD"]
    assert tenant.get("/api/mo/uni.json?rsp-subtree=sideways").status_code == 400


def test_rsp_subtree_include(tenant: httpx.Client) -> None:
    r = tenant.get("/api/mo/uni/tn-t1.json?rsp-subtree-include=count").json()
    assert r == {
        "totalCount": "1",
        "imdata": [{"moCount": {"attributes": {"childAction": "", "count": "1", "dn": "", "status": ""}}}],
    }
    r = tenant.get("/api/mo/uni/tn-zzz.json?rsp-subtree-include=count").json()
    assert attrs_of(r["imdata"][0])["count"] == "0"
    r = tenant.get("/api/class/fvTenant.json?rsp-subtree-include=count").json()
    assert attrs_of(r["imdata"][0])["count"] == "4"
    r = tenant.get("/api/mo/uni/tn-t1.json?rsp-subtree-include=faults&rsp-subtree=full").json()
    assert r["totalCount"] == "1"
    assert "faultInst" not in str(r)  # the mock raises no faults
    r = tenant.get("/api/mo/uni/tn-t1.json?rsp-subtree-include=faults,no-scoped&query-target=subtree").json()
    assert r == {"totalCount": "0", "imdata": []}  # only the (absent) faults were asked for
    assert tenant.get("/api/class/faultInst.json").json() == {"totalCount": "0", "imdata": []}
    assert tenant.get("/api/mo/uni.json?rsp-subtree-include=nonsense").status_code == 400


def test_rsp_prop_include(tenant: httpx.Client) -> None:
    full = attrs_of(tenant.get("/api/mo/uni/tn-t1/BD-BD-net.json").json()["imdata"][0])
    naming = attrs_of(
        tenant.get("/api/mo/uni/tn-t1/BD-BD-net.json?rsp-prop-include=naming-only").json()["imdata"][0]
    )
    assert naming == {"dn": "uni/tn-t1/BD-BD-net", "name": "BD-net"}
    config = attrs_of(
        tenant.get("/api/mo/uni/tn-t1/BD-BD-net.json?rsp-prop-include=config-only").json()["imdata"][0]
    )
    assert "arpFlood" in config
    assert "annotation" in config
    assert "modTs" not in config
    assert "pcTag" not in config
    assert "modTs" in full
    assert "pcTag" in full


def test_order_by_and_paging(tenant: httpx.Client) -> None:
    for name in ("b", "c", "a"):
        tenant.post("/api/mo/uni.json", json=mo("fvTenant", {"name": f"p-{name}"}))
    q = "/api/class/fvTenant.json?order-by=fvTenant.name|desc"
    names = [attrs_of(i)["name"] for i in tenant.get(q).json()["imdata"]]
    assert names == sorted(names, reverse=True)
    q = "/api/class/fvTenant.json?order-by=fvTenant.name|asc&page-size=3&page=1"
    r = tenant.get(q).json()
    assert r["totalCount"] == "7"  # counted before paging
    assert [attrs_of(i)["name"] for i in r["imdata"]] == ["p-a", "p-b", "p-c"]  # after common, infra, mgmt
    r = tenant.get("/api/class/fvTenant.json?order-by=fvTenant.name&page-size=2&page=9").json()
    assert r["imdata"] == []
    assert r["totalCount"] == "7"
    assert tenant.get("/api/class/fvTenant.json?page-size=x").status_code == 400
    assert tenant.get("/api/class/fvTenant.json?order-by=bad|sideways").status_code == 400


def test_relations_resolve_like_apic(tenant: httpx.Client) -> None:
    rsctx = attrs_of(tenant.get("/api/mo/uni/tn-t1/BD-BD-net/rsctx.json").json()["imdata"][0])
    assert rsctx["tDn"] == "uni/tn-t1/ctx-t1-Vrf"
    assert rsctx["state"] == "formed"
    assert rsctx["tCl"] == "fvCtx"
    prov = attrs_of(tenant.get("/api/mo/uni/tn-t1/ap-app/epg-web/rsprov-c1.json").json()["imdata"][0])
    assert prov["state"] == "formed"
    tenant.post("/api/mo/uni/tn-t1/ap-app/epg-web.json", json=mo("fvRsCons", {"tnVzBrCPName": "default"}))
    cons = attrs_of(tenant.get("/api/mo/uni/tn-t1/ap-app/epg-web/rscons-default.json").json()["imdata"][0])
    assert cons["tDn"] == "uni/tn-common/brc-default"  # falls back to common
    dom = attrs_of(
        tenant.get("/api/mo/uni/tn-t1/ap-app/epg-web/rsdomAtt-[uni/phys-d1].json").json()["imdata"][0]
    )
    assert dom["state"] == "missing-target"
    tenant.post("/api/mo/uni.json", json=mo("physDomP", {"name": "d1"}))
    dom = attrs_of(
        tenant.get("/api/mo/uni/tn-t1/ap-app/epg-web/rsdomAtt-[uni/phys-d1].json").json()["imdata"][0]
    )
    assert dom["state"] == "formed"
    path = "uni/tn-t1/ap-app/epg-web/rspathAtt-[topology/pod-1/paths-101/pathep-[eth1/1]]"
    assert attrs_of(tenant.get(f"/api/mo/{path}.json").json()["imdata"][0])["state"] == "formed"


def test_result_too_big_without_paging() -> None:
    from testbed.apic import ApicMock

    with ApicMock.start(http=True, demo_fabric=False, extra_args=None) as apic:
        assert apic.service is not None
        apic.service.engine.max_result = 3
        with apic.client() as c:
            r = c.get("/api/class/fvTenant.json?query-target=subtree")
            assert r.status_code == 400
            assert error_of(r)[1] == "Unable to process the query, result dataset is too big"
            assert c.get("/api/class/fvTenant.json?query-target=subtree&page-size=2").status_code == 200


def test_the_audit_log_names_who_changed_what(apic_mock) -> None:
    """Every change made through /api/ leaves an aaaModLR record (user, affected DN, ind), served to
    class queries newest first with filters and paging, as APIC's audit log is read."""
    with apic_mock.client() as client:
        body = {"fvTenant": {"attributes": {"name": "audited"}, "children": [{"fvAp": {"attributes": {"name": "a"}}}]}}
        assert client.post("/api/mo/uni.json", json=body).status_code == 200
        assert client.post("/api/mo/uni/tn-audited/ap-a.json",
                           json={"fvAp": {"attributes": {"descr": "changed"}}}).status_code == 200
        assert client.delete("/api/mo/uni/tn-audited/ap-a.json").status_code == 200
        reply = client.get('/api/node/class/aaaModLR.json?query-target-filter=eq(aaaModLR.affected,'
                           '"uni/tn-audited/ap-a")').json()
        records = [item["aaaModLR"]["attributes"] for item in reply["imdata"]]
        assert [r["ind"] for r in records] == ["deletion", "modification", "creation"]
        assert {r["user"] for r in records} == {apic_mock.username}
        assert records[1]["changeSet"] == "descr:changed"
        assert records[0]["dn"].startswith("subj-[uni/tn-audited/ap-a]/mod-")
        newest = client.get('/api/class/aaaModLR.json?query-target-filter=eq(aaaModLR.affected,'
                            '"uni/tn-audited/ap-a")&page-size=1').json()
        assert newest["totalCount"] == "3"
        assert [i["aaaModLR"]["attributes"]["ind"] for i in newest["imdata"]] == ["deletion"]
    assert apic_mock.admin.remove("uni/tn-audited") >= 1
    with apic_mock.client() as client:
        removed = client.get('/api/class/aaaModLR.json?query-target-filter=eq(aaaModLR.affected,"uni/tn-audited")')
        # the admin API's removal (fabric activity) is not a user's change: only the user's creation
        assert [i["aaaModLR"]["attributes"]["ind"] for i in removed.json()["imdata"]] == ["creation"]
