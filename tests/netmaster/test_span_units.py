"""The span index (netmaster.api.span) fed store events directly: which endpoints a host's span covers
and when a span changes."""

from __future__ import annotations

from netmaster.api.span import Span, SpanIndex
from netmaster.store import keys


def _ep(index: SpanIndex, ep: str, host: str, network: str, tenant: str = "t") -> set[str]:
    return index.apply(keys.endpoint(ep), {"tenantName": tenant, "networkName": network, "host": host}).hosts


def test_a_hosts_span_is_its_networks_and_grows_with_its_first_endpoint_there() -> None:
    index = SpanIndex()
    assert _ep(index, "a1", "hA", "n1") == {"hA"}
    assert _ep(index, "b1", "hB", "n1") == {"hB"}
    assert _ep(index, "b2", "hB", "n2") == {"hB"}
    assert _ep(index, "a2", "hA", "n1") == set(), "a second endpoint on n1 changes no span"
    span_a = index.span("hA")
    assert span_a == Span(frozenset({"t:n1"}))
    assert set(index.covered(span_a)) == {"a1", "a2", "b1"}
    assert index.span("hC") == Span(), "a host without endpoints covers none"
    # hA's first endpoint on n2: n2's endpoints are newly covered.
    assert _ep(index, "a3", "hA", "n2") == {"hA"}
    assert set(index.newly_covered(span_a, index.span("hA"))) == {"b2", "a3"}
    # Its last endpoint on n2 goes: without a span record the span narrows.
    assert index.apply(keys.endpoint("a3"), None).hosts == {"hA"}
    assert index.span("hA") == span_a


def test_a_span_record_keeps_networks_the_host_left() -> None:
    index = SpanIndex()
    assert index.apply(keys.span("hA"), {"networks": ["t:n1"]}).hosts == {"hA"}
    assert _ep(index, "a1", "hA", "n1") == set(), "the record had n1 already"
    assert index.apply(keys.endpoint("a1"), None).hosts == set()
    assert index.span("hA").networks == {"t:n1"}


def test_a_rule_naming_a_group_or_routing_makes_the_tenant_wide() -> None:
    index = SpanIndex()
    _ep(index, "a1", "hA", "n1")
    _ep(index, "b1", "hB", "n2")
    _ep(index, "c1", "hB", "n1", tenant="u")
    rule = keys.obj("rule", "t:p:1")
    assert not index.apply(rule, {"config": {"tenantName": "t", "fromNetwork": "n2"}, "status": {}}).every
    assert set(index.covered(index.span("hA"))) == {"a1"}, "a rule naming a network needs no endpoints"
    assert index.apply(rule, {"config": {"tenantName": "t", "toEndpointGroup": "g"}, "status": {}}).every
    wide = index.span("hA")
    assert wide.tenants == {"t"}
    assert set(index.covered(wide)) == {"a1", "b1"}, "the whole tenant, not tenant u"
    assert not Span(frozenset({"t:n1"})).within(Span())
    assert Span(frozenset({"t:n1"})).within(wide)
    assert wide.routes() == {("t", "t")}
    assert index.apply(rule, None).every
    assert index.span("hA").tenants == frozenset()
    # Routing: every tenant is wide; a rule flip then changes nothing.
    glob = keys.obj("global", "global")
    assert index.apply(glob, {"config": {"fwdMode": "routing"}, "status": {}}).every
    assert index.span("hB").tenants == {"t", "u"}
    assert not index.apply(rule, {"config": {"tenantName": "t", "toEndpointGroup": "g"}, "status": {}}).every


def test_at_tenant_grain_every_tenant_is_wide() -> None:
    """netmaster's default (--agent-span tenant): DNS, services and Kubernetes policies need the tenant."""
    index = SpanIndex(network_grain=False)
    _ep(index, "a1", "hA", "n1")
    _ep(index, "b1", "hB", "n2")
    _ep(index, "c1", "hB", "n1", tenant="u")
    assert index.span("hA").tenants == {"t"}
    assert set(index.covered(index.span("hA"))) == {"a1", "b1"}
    assert _ep(index, "a2", "hA", "n2") == {"hA"}, "a new network of the tenant is a new span all the same"
    assert set(index.newly_covered(Span(frozenset({"t:n1"}), frozenset({"t"})), index.span("hA"))) == set()
